//! The APIs this process is authoritative for.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::{Api, ApiDescriptor};
use crate::error::{Error, NameKind, Result};
use crate::util::{read, write};

/// One registered API: its dispatcher and its description, computed once.
#[derive(Clone)]
pub(crate) struct RegisteredApi {
    pub(crate) api: Arc<dyn Api>,
    pub(crate) descriptor: Arc<ApiDescriptor>,
}

/// The registry of APIs served by this process. Registration happens during setup; lookups
/// happen on every RPC and fire, so reads take a shared lock only.
#[derive(Default)]
pub(crate) struct Registry {
    apis: RwLock<BTreeMap<String, RegisteredApi>>,
}

impl Registry {
    pub(crate) fn add(&self, api: Arc<dyn Api>) -> Result<Arc<ApiDescriptor>> {
        let descriptor = Arc::new(api.descriptor());
        validate_api_name(&descriptor.name)?;
        let mut apis = write(&self.apis);
        if apis.contains_key(&descriptor.name) {
            return Err(Error::Duplicate {
                kind: NameKind::Api,
                name: descriptor.name.clone(),
                scope: String::new(),
            });
        }
        apis.insert(
            descriptor.name.clone(),
            RegisteredApi {
                api,
                descriptor: descriptor.clone(),
            },
        );
        Ok(descriptor)
    }

    pub(crate) fn get(&self, name: &str) -> Option<RegisteredApi> {
        read(&self.apis).get(name).cloned()
    }

    /// Every registered API, sorted by name.
    pub(crate) fn all(&self) -> Vec<RegisteredApi> {
        read(&self.apis).values().cloned().collect()
    }
}

/// API names are dot-separated identifiers (`auth`, `my_company.auth`); `default` is reserved
/// for the configuration's catch-all entry.
pub(crate) fn validate_api_name(name: &str) -> Result<()> {
    let valid_part = |part: &str| {
        !part.is_empty()
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !part.starts_with(|c: char| c.is_ascii_digit())
    };
    if name == "default" || !name.split('.').all(valid_part) {
        return Err(Error::InvalidName {
            kind: NameKind::Api,
            name: name.to_owned(),
            reason: "use dot-separated identifiers such as `auth` or `my_company.auth` \
                     (`default` is reserved)"
                .to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiBuilder;

    #[test]
    fn rejects_duplicates_and_bad_names() {
        let registry = Registry::default();
        registry
            .add(Arc::new(ApiBuilder::new("my_company.auth").build()))
            .expect("first registration succeeds");
        let duplicate = registry.add(Arc::new(ApiBuilder::new("my_company.auth").build()));
        assert!(matches!(duplicate, Err(Error::Duplicate { .. })));
        for bad in ["", "default", "a..b", "1abc", "has space"] {
            assert!(
                registry
                    .add(Arc::new(ApiBuilder::new(bad).build()))
                    .is_err(),
                "{bad}"
            );
        }
        assert_eq!(registry.all().len(), 1);
    }
}
