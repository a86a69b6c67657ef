//! [`BusBuilder`]: a bus from a configuration, with the transports it selects.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::bus::{Bus, BusInner};
use super::schema::BusSchema;
use super::transports::Transports;
use crate::api::Registry;
use crate::config::{expand_name, Config, ConfigOverrides};
use crate::error::Result;
use crate::transport::{Connector, StandardConnector};

/// Builds a [`Bus`] from a configuration.
///
/// ```
/// let bus = lightbus::Bus::builder()
///     .service_name("billing")
///     .process_name("billing-{pid}")
///     .build()
///     .expect("valid configuration");
/// assert_eq!(bus.service_name(), "billing");
/// ```
#[derive(Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct BusBuilder {
    config: Option<Config>,
    overrides: ConfigOverrides,
    local_schemas: Vec<PathBuf>,
    connector: Option<Arc<dyn Connector>>,
}

impl std::fmt::Debug for BusBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusBuilder")
            .field("config", &self.config.as_ref().map(|config| &config.origin))
            .field("overrides", &self.overrides)
            .field("local_schemas", &self.local_schemas)
            .field("custom_connector", &self.connector.is_some())
            .finish()
    }
}

impl BusBuilder {
    /// Uses this configuration instead of loading one (overrides still apply to names).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Loads this configuration file instead of the one named by `LIGHTBUS_CONFIG`.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.overrides.config_path = Some(path.into());
        self
    }

    /// Applies command-line style overrides (file, names, log level).
    pub fn overrides(mut self, overrides: ConfigOverrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// Sets the service name (placeholders allowed).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.overrides.service_name = Some(name.into());
        self
    }

    /// Sets the process name (placeholders allowed).
    pub fn process_name(mut self, name: impl Into<String>) -> Self {
        self.overrides.process_name = Some(name.into());
        self
    }

    /// Loads API schemas from a `dumpschema` file or directory when the bus is built (see
    /// [`Bus::load_local_schema`]). May be given several times.
    pub fn local_schema(mut self, path: impl Into<PathBuf>) -> Self {
        self.local_schemas.push(path.into());
        self
    }

    /// Builds every transport with `connector` instead of the standard one (which builds
    /// what the configuration selects: Redis or memory). The one place to put a bus on
    /// other transports — [`BusMock`](crate::testing::BusMock) does, to intercept calls and
    /// fires.
    pub fn connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Loads the configuration and creates the bus. Connections open on first use.
    pub fn build(self) -> Result<Bus> {
        let mut config = match self.config {
            Some(config) => config,
            None => Config::load(&self.overrides)?,
        };
        if let Some(name) = &self.overrides.service_name {
            config.set_service_name(name);
        }
        if let Some(name) = &self.overrides.process_name {
            config.process_name = expand_name(name);
        }
        if let Some(level) = self.overrides.log_level {
            config.file.bus.log_level = level;
        }
        let connector = self
            .connector
            .unwrap_or_else(|| Arc::new(StandardConnector::for_config(&config)));
        let settings = &config.bus().schema;
        let schema = BusSchema::new(
            connector.schema(settings)?,
            settings.ttl.get(),
            settings.human_readable,
        );
        for path in &self.local_schemas {
            schema.load_local(path)?;
        }
        let bus = Bus {
            inner: Arc::new(BusInner {
                transports: Transports::new(config.clone(), connector),
                schema,
                config,
                apis: Registry::default(),
                plugins: Default::default(),
                listeners: Default::default(),
                tasks: Default::default(),
                readiness: Default::default(),
                on_start: Mutex::default(),
                after_stop: Mutex::default(),
            }),
        };
        super::plugin::install_builtin(&bus)?;
        Ok(bus)
    }
}
