#[lightbus::api(name = "auth")]
pub trait Auth {
    async fn reset(&mut self);

    async fn check_password(username: String, password: String) -> bool;
}

fn main() {}
