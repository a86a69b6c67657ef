//! `#[lightbus::api]` parameters that may be left out, and values in the peer's forms, seen
//! from a user's unit tests (`BusMock`, no Redis): what the typed client sends, what the
//! generated server fills in, what the descriptor's schemas say, and how event fields are
//! written and read. The same behaviour against the real Python peer is in `interop_values.rs`.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use lightbus::api::Api;
use lightbus::schema::{api_schema, to_python_json};
use lightbus::testing::BusMock;
use lightbus::Kwargs;
use serde_json::{json, Value};

/// An API with every kind of parameter that may be left out.
#[lightbus::api(name = "shop")]
pub trait Shop {
    /// `def search(self, text: str, limit: int = 10, tags: List[str] = [],
    ///             region: Optional[str] = None) -> str`
    async fn search(
        &self,
        text: String,
        #[default(10)] limit: i64,
        #[default] tags: Vec<String>,
        region: Option<String>,
    ) -> String;

    /// Returns `at` unchanged.
    async fn stamp(&self, at: DateTime<Utc>) -> DateTime<Utc>;

    /// An order was placed.
    #[event]
    #[derive(PartialEq)]
    fn order_placed(
        sku: String,
        at: DateTime<Utc>,
        #[default(1)] quantity: i64,
        note: Option<String>,
    );
}

struct Service;

impl Shop for Service {
    async fn search(
        &self,
        text: String,
        limit: i64,
        tags: Vec<String>,
        region: Option<String>,
    ) -> String {
        format!("{text} {limit} {tags:?} {region:?}")
    }

    async fn stamp(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }
}

fn kwargs(value: Value) -> Kwargs {
    value.as_object().cloned().expect("an object")
}

fn half_past() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 30, 0).unwrap() + chrono::Duration::milliseconds(500)
}

#[tokio::test]
async fn the_client_leaves_out_none_so_the_workers_defaults_apply() {
    let mock = BusMock::new();
    mock.rpc("shop.search").returns("ok");
    let client = ShopClient::new(mock.bus());
    client
        .search("shoes", None, None, None)
        .await
        .expect("a call");
    client
        .search("hats", 5, vec!["red".to_owned()], "eu".to_owned())
        .await
        .expect("a call");
    assert_eq!(
        mock.calls_to("shop.search"),
        vec![
            kwargs(json!({"text": "shoes"})),
            kwargs(json!({"text": "hats", "limit": 5, "tags": ["red"], "region": "eu"})),
        ]
    );
}

#[tokio::test]
async fn the_server_fills_in_defaults_for_arguments_left_out() {
    let server = Arc::new(ShopServer::new(Service));
    let outcome = server
        .clone()
        .call("search", kwargs(json!({"text": "shoes"})))
        .await;
    assert_eq!(outcome, Ok(json!("shoes 10 [] None")));
    // An integral float is an integer, as Python's `int()` makes it.
    let outcome = server
        .call("search", kwargs(json!({"text": "shoes", "limit": 2.0})))
        .await;
    assert_eq!(outcome, Ok(json!("shoes 2 [] None")));
}

#[tokio::test]
async fn datetimes_cross_in_pythons_isoformat_both_ways() {
    let mock = BusMock::new();
    mock.rpc("shop.stamp")
        .returns("2024-05-01T12:30:00.500000+00:00");
    let at = ShopClient::new(mock.bus())
        .stamp(half_past())
        .await
        .expect("a call");
    assert_eq!(at, half_past());
    mock.assert_called_with(
        "shop.stamp",
        json!({"at": "2024-05-01T12:30:00.500000+00:00"}),
    );

    let server = Arc::new(ShopServer::new(Service));
    let outcome = server
        .call("stamp", kwargs(json!({"at": "2024-05-01T12:30:00.5Z"})))
        .await;
    assert_eq!(outcome, Ok(json!("2024-05-01T12:30:00.500000+00:00")));
}

#[test]
fn event_fields_are_written_and_read_as_the_peer_does() {
    let event = OrderPlaced {
        sku: "A-1".into(),
        at: half_past(),
        quantity: 3,
        note: None,
    };
    let written = serde_json::to_value(&event).expect("serializes");
    assert_eq!(
        written,
        json!({"sku": "A-1", "at": "2024-05-01T12:30:00.500000+00:00", "quantity": 3, "note": null})
    );
    // Left out by a Python firer: the default, and `None`.
    let read: OrderPlaced =
        serde_json::from_value(json!({"sku": "A-1", "at": "2024-05-01T12:30:00.500000+00:00"}))
            .expect("deserializes");
    assert_eq!(
        read,
        OrderPlaced {
            quantity: 1,
            ..event
        }
    );
}

#[test]
fn schemas_are_the_ones_python_writes_for_the_same_defaults() {
    // What Python Lightbus 1.1.2 stores for the signatures in the trait's doc comments.
    const SEARCH: &str = r#"{"$schema": "http://json-schema.org/draft-07/schema#", "additionalProperties": false, "properties": {"limit": {"default": 10, "type": "integer"}, "region": {"anyOf": [{"default": null, "type": "string"}, {"default": null, "type": "null"}]}, "tags": {"default": [], "items": {"type": "string"}, "type": "array"}, "text": {"type": "string"}}, "required": ["text"], "title": "RPC shop.search() parameters", "type": "object"}"#;
    const ORDER_PLACED: &str = r#"{"$schema": "http://json-schema.org/draft-07/schema#", "additionalProperties": false, "properties": {"at": {"format": "date-time", "type": "string"}, "note": {"anyOf": [{"default": null, "type": "string"}, {"default": null, "type": "null"}]}, "quantity": {"default": 1, "type": "integer"}, "sku": {"type": "string"}}, "required": ["sku", "at"], "title": "Event shop.order_placed parameters", "type": "object"}"#;
    let schema = api_schema(&ShopServer::new(Service).descriptor());
    assert_eq!(
        to_python_json(&schema["rpcs"]["search"]["parameters"], None),
        SEARCH
    );
    assert_eq!(
        to_python_json(&schema["events"]["order_placed"]["parameters"], None),
        ORDER_PLACED
    );
}
