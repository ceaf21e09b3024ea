//! Small helpers to write `tf-provider` schemas tersely, and to treat
//! configuration values the way the Terraform plugin framework does.

use std::collections::HashMap;

use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock, Schema,
};
use tf_provider::value::Value;

/// A schema at version 0 (the version the real providers use for these types).
pub fn schema(
    description: &str,
    attributes: HashMap<String, Attribute>,
    blocks: HashMap<String, NestedBlock>,
) -> Schema {
    Schema {
        version: 0,
        block: Block {
            version: 0,
            attributes,
            blocks,
            description: Description::markdown(description),
            deprecated: false,
        },
    }
}

/// An attribute of the given type, constraint and description.
pub fn attr(
    attr_type: AttributeType,
    constraint: AttributeConstraint,
    description: &str,
) -> Attribute {
    Attribute {
        attr_type,
        description: Description::markdown(description),
        constraint,
        sensitive: false,
        deprecated: false,
    }
}

/// A block with the given attributes, for use as a nested block.
pub fn block(description: &str, attributes: HashMap<String, Attribute>) -> Block {
    Block {
        version: 0,
        attributes,
        blocks: HashMap::new(),
        description: Description::markdown(description),
        deprecated: false,
    }
}

/// Whether a configuration value counts as "specified": not null. An unknown
/// value (known only at apply time) counts as specified, as in the framework's
/// attribute-combination validators.
pub fn is_specified<T>(value: &Value<T>) -> bool {
    !value.is_null()
}
