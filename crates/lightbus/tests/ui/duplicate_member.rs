#[lightbus::api(name = "my_company.auth")]
pub trait Auth {
    async fn user_registered(&self, username: String) -> bool;

    #[event]
    fn user_registered(username: String);
}

fn main() {}
