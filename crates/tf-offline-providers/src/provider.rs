//! The provider part both stand-ins share: like the real `hashicorp/archive` and
//! `hashicorp/random`, neither takes configuration; each only names what it serves.

use std::collections::HashMap;

use async_trait::async_trait;
use tf_provider::schema::Schema;
use tf_provider::value::ValueEmpty;
use tf_provider::{Diagnostics, DynamicDataSource, DynamicResource, Provider};

use crate::schema_util::schema;

/// The resources or data sources of a provider, by type name without the provider's prefix.
type Served<T> = HashMap<String, Box<T>>;

/// A provider without configuration that serves a fixed set of resources and data sources.
#[derive(Debug, Clone, Copy)]
pub struct StandInProvider {
    /// The description of the provider's (empty) schema.
    pub description: &'static str,
    /// Builds the resources; called each time Terraform asks for them.
    pub resources: fn() -> Served<dyn DynamicResource>,
    /// Builds the data sources; called each time Terraform asks for them.
    pub data_sources: fn() -> Served<dyn DynamicDataSource>,
}

#[async_trait]
impl Provider for StandInProvider {
    type Config<'a> = ValueEmpty;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(schema(self.description, HashMap::new(), HashMap::new()))
    }

    fn get_resources(&self, _diags: &mut Diagnostics) -> Option<Served<dyn DynamicResource>> {
        Some((self.resources)())
    }

    fn get_data_sources(&self, _diags: &mut Diagnostics) -> Option<Served<dyn DynamicDataSource>> {
        Some((self.data_sources)())
    }
}
