#[lightbus::api(name = "auth")]
pub trait Auth {
    fn check_password(&self, username: String, password: String) -> bool;
}

fn main() {}
