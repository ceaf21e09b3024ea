//! One version of an S3 object: what the processor reads, and what its messages and file
//! status rows name (decisions P19, P21, P35).

use serde::Serialize;

/// The bucket, key and (when known) version id of one S3 object version; serialised as the
/// three fields `bucket`, `key` and `version_id` of the messages that name it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectVersion {
    /// The bucket name.
    pub bucket: String,
    /// The object key, URL-decoded.
    pub key: String,
    /// The version id: the one an event or message names, or the one read from a versioned
    /// bucket; `None` for an unversioned bucket (never empty).
    pub version_id: Option<String>,
}

impl ObjectVersion {
    /// The object version `bucket`/`key`, with an empty version id taken as none.
    pub fn new(bucket: &str, key: &str, version_id: Option<&str>) -> ObjectVersion {
        ObjectVersion {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: version_id.filter(|v| !v.is_empty()).map(str::to_owned),
        }
    }

    /// The version id as text, when there is one (an empty one, which a hand-built value may
    /// hold, is none).
    pub fn version(&self) -> Option<&str> {
        self.version_id.as_deref().filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_version_id_is_none() {
        assert_eq!(ObjectVersion::new("b", "k", Some("")).version_id, None);
        let hand_built = ObjectVersion {
            version_id: Some(String::new()),
            ..ObjectVersion::default()
        };
        assert_eq!(hand_built.version(), None);
        assert_eq!(
            ObjectVersion::new("b", "k", Some("v1")).version(),
            Some("v1")
        );
    }
}
