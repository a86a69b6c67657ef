//! Test buses: [`bus`] and [`named_bus`] build a client from a configuration file or a
//! [`Config`] value, failing the test with the reason when they cannot.

use std::path::{Path, PathBuf};

use lightbus::config::Config;
use lightbus::{Bus, BusBuilder};

/// Where a test bus gets its configuration: a file ([`Path`], [`PathBuf`], e.g. from
/// [`TestConfig::write`](crate::TestConfig::write)) or a [`Config`] value.
pub trait BusConfig {
    /// A builder with this configuration.
    fn builder(&self) -> BusBuilder;
}

impl BusConfig for Path {
    fn builder(&self) -> BusBuilder {
        Bus::builder().config_file(self)
    }
}

impl BusConfig for PathBuf {
    fn builder(&self) -> BusBuilder {
        self.as_path().builder()
    }
}

impl BusConfig for Config {
    fn builder(&self) -> BusBuilder {
        Bus::builder().config(self.clone())
    }
}

/// A bus client (one "process") configured by `config`, with the names the configuration
/// or the environment give.
pub fn bus(config: &(impl BusConfig + ?Sized)) -> Bus {
    config
        .builder()
        .build()
        .unwrap_or_else(|error| panic!("cannot build a bus from the test config: {error}"))
}

/// A bus of service `service`, process `process`, configured by `config`.
pub fn named_bus(config: &(impl BusConfig + ?Sized), service: &str, process: &str) -> Bus {
    config
        .builder()
        .service_name(service)
        .process_name(process)
        .build()
        .unwrap_or_else(|error| panic!("cannot build a bus from the test config: {error}"))
}
