#[lightbus::api(name = "my-company.auth")]
pub trait Auth {}

fn main() {}
