#[lightbus::api(version = 2)]
pub trait Auth {
    async fn check_password(&self, username: String, password: String) -> bool;
}

fn main() {}
