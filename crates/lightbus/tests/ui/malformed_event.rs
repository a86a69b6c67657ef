#[lightbus::api(name = "auth")]
pub trait Auth {
    #[event]
    async fn user_registered(&self, username: String) -> bool {
        true
    }
}

fn main() {}
