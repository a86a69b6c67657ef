// A listener whose handler returns something that is not an outcome, or that is not a
// handler at all, gets an error saying what a handler looks like.
use lightbus::EventMessage;

#[lightbus::api(name = "auth")]
pub trait Auth {
    /// A user signed up.
    #[event]
    fn user_registered(username: String);
}

async fn returns_a_count(_message: EventMessage, _user: UserRegistered) -> u32 {
    1
}

fn main() {
    let bus = lightbus::Bus::builder().build().unwrap();
    bus.listen("counting", returns_a_count).unwrap();
    bus.listen::<UserRegistered, _>("not_a_function", "send_welcome_email").unwrap();
}
