//! Typed configuration, validated before anything is opened.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::Error;

/// Where the blobs live. Validated by [`BlobStoreConfig::validate`] (called by
/// [`BlobStore::open`](crate::BlobStore::open)) before anything is touched.
///
/// The in-memory backend used by unit tests is not a configuration: see
/// [`BlobStore::in_memory`](crate::BlobStore::in_memory).
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant, reason = "built once at start-up")]
pub enum BlobStoreConfig {
    /// A folder on the local file system (the default for a single hospital node). Objects
    /// are files under `root/objects/sha256/`; writes are fsynced before they are reported
    /// as stored.
    Local {
        /// The folder; created when missing.
        root: PathBuf,
    },
    /// An S3-compatible object store (AWS S3, MinIO).
    S3(S3Config),
}

impl BlobStoreConfig {
    /// A local folder.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self::Local { root: root.into() }
    }

    /// Checks every field; returns the first problem found, naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Self::Local { root } => {
                if root.as_os_str().is_empty() {
                    return Err(Error::config("local root: must not be empty"));
                }
                Ok(())
            }
            Self::S3(s3) => s3.validate(),
        }
    }
}

impl Default for BlobStoreConfig {
    /// A local folder `blobs` in the current directory.
    fn default() -> Self {
        Self::local("blobs")
    }
}

/// An S3-compatible store.
///
/// Requests are signed with SigV4 and sent over HTTPS. Plain HTTP is refused unless
/// [`dangerous_allow_http`](Self::dangerous_allow_http) is set (local MinIO in tests only):
/// over HTTP the credentials' signatures and the object bytes cross the network unprotected.
///
/// Objects of at most 5 GiB can be stored: the create-only move from the temporary key to the
/// content key is a single server-side `UploadPartCopy`, whose S3 limit is 5 GiB.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct S3Config {
    /// Endpoint URL, `https://host[:port]` (no path, query or user info). `None` means AWS S3
    /// in [`region`](Self::region).
    pub endpoint: Option<String>,
    /// Bucket name (3 to 63 characters: lowercase letters, digits, `.` and `-`). Must exist.
    pub bucket: String,
    /// Region, e.g. `us-east-1` (MinIO's default).
    pub region: String,
    /// Access key and secret; masked in `Debug`.
    pub credentials: S3Credentials,
    /// Optional folder inside the bucket (e.g. `hospital1/prod`), so that one bucket can hold
    /// several independent stores. No leading or trailing `/`.
    pub key_prefix: Option<String>,
    /// Virtual-hosted-style requests (`https://bucket.host/key`) instead of path style
    /// (`https://host/bucket/key`, which MinIO needs). Default `false`.
    pub virtual_hosted_style: bool,
    /// Timeout to establish a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Timeout of one request (for example one 8 MiB part). Default 60 s.
    pub request_timeout: Duration,
    /// How many times a failed request is retried (with backoff). Default 5.
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt. Default 60 s.
    pub retry_timeout: Duration,
    /// Allow plain `http://` endpoints. **Dangerous**: only for a MinIO on localhost in tests.
    pub dangerous_allow_http: bool,
}

impl S3Config {
    /// A configuration with the defaults listed on each field.
    pub fn new(
        endpoint: Option<String>,
        bucket: impl Into<String>,
        region: impl Into<String>,
        credentials: S3Credentials,
    ) -> Self {
        Self {
            endpoint,
            bucket: bucket.into(),
            region: region.into(),
            credentials,
            key_prefix: None,
            virtual_hosted_style: false,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_retries: 5,
            retry_timeout: Duration::from_secs(60),
            dangerous_allow_http: false,
        }
    }

    /// A configuration from the `MEDFABRIC_S3_*` settings that `scripts/minio.sh` writes and
    /// the CLI reads from its environment: `MEDFABRIC_S3_ENDPOINT` (absent: AWS S3),
    /// `MEDFABRIC_S3_REGION` (default `us-east-1`), `MEDFABRIC_S3_ACCESS_KEY_ID` and
    /// `MEDFABRIC_S3_SECRET_ACCESS_KEY` (required), looked up with `var`. Plain `http://` is
    /// allowed for a loopback endpoint only (a local MinIO). Validated.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error) naming the missing or invalid setting.
    pub fn from_vars(
        bucket: impl Into<String>,
        key_prefix: Option<String>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let need = |k: &str| var(k).ok_or_else(|| Error::config(format!("s3: {k} is not set")));
        let endpoint = var("MEDFABRIC_S3_ENDPOINT");
        let loopback = endpoint.as_deref().is_some_and(|e| {
            e.starts_with("http://127.0.0.1:") || e.starts_with("http://localhost:")
        });
        let mut config = Self::new(
            endpoint,
            bucket,
            var("MEDFABRIC_S3_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
            S3Credentials::new(
                need("MEDFABRIC_S3_ACCESS_KEY_ID")?,
                need("MEDFABRIC_S3_SECRET_ACCESS_KEY")?,
            ),
        );
        config.key_prefix = key_prefix;
        config.dangerous_allow_http = loopback;
        config.validate()?;
        Ok(config)
    }

    /// Checks every field; returns the first problem found, naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        validate_bucket(&self.bucket)?;
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::config(
                "s3 region: must be non-empty lowercase letters, digits and '-'",
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            self.validate_endpoint(endpoint)?;
        }
        self.credentials.validate()?;
        if let Some(prefix) = &self.key_prefix {
            validate_prefix(prefix)?;
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(Error::config("s3 timeouts: must be greater than zero"));
        }
        if self.retry_timeout.is_zero() && self.max_retries > 0 {
            return Err(Error::config(
                "s3 retry_timeout: must be greater than zero when max_retries > 0",
            ));
        }
        Ok(())
    }

    fn validate_endpoint(&self, endpoint: &str) -> Result<(), Error> {
        let url = url::Url::parse(endpoint)
            .map_err(|e| Error::config(format!("s3 endpoint: not a URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.dangerous_allow_http => {}
            "http" => {
                return Err(Error::config(
                    "s3 endpoint: plain http is refused; use https (or set dangerous_allow_http \
                     for a local test server)",
                ));
            }
            other => {
                return Err(Error::config(format!(
                    "s3 endpoint: scheme must be https, not {other:?}"
                )));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::config("s3 endpoint: no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // credentials in the URL would end up in logs and error messages
            return Err(Error::config(
                "s3 endpoint: must not contain user info; use credentials",
            ));
        }
        if url.path() != "/" && !url.path().is_empty() {
            return Err(Error::config(
                "s3 endpoint: must not have a path (the bucket is a separate field)",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(
                "s3 endpoint: must not have a query or fragment",
            ));
        }
        Ok(())
    }
}

fn validate_bucket(bucket: &str) -> Result<(), Error> {
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let edges_ok = bucket
        .bytes()
        .next()
        .zip(bucket.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if !(3..=63).contains(&bucket.len()) || !ok_chars || !edges_ok || bucket.contains("..") {
        return Err(Error::config(
            "s3 bucket: 3 to 63 lowercase letters, digits, '.' or '-', starting and ending \
             with a letter or digit",
        ));
    }
    Ok(())
}

fn validate_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.is_empty() || prefix.starts_with('/') || prefix.ends_with('/') {
        return Err(Error::config(
            "s3 key_prefix: non-empty, without leading or trailing '/'",
        ));
    }
    object_store::path::Path::parse(prefix)
        .map_err(|e| Error::config(format!("s3 key_prefix: {e}")))?;
    Ok(())
}

/// S3 credentials. `Debug` shows the access key id only; the secret and the session token
/// are zeroized on drop.
#[derive(Clone)]
pub struct S3Credentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
}

impl S3Credentials {
    /// Static credentials.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: Zeroizing::new(secret_access_key.into()),
            session_token: None,
        }
    }

    /// Adds a session token (temporary credentials).
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(Zeroizing::new(token.into()));
        self
    }

    /// The access key id (not secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub(crate) fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    pub(crate) fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref().map(String::as_str)
    }

    fn validate(&self) -> Result<(), Error> {
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if self.access_key_id.is_empty() || !printable(&self.access_key_id) {
            return Err(Error::config(
                "s3 credentials: access key id must be non-empty printable ASCII",
            ));
        }
        if self.secret_access_key.is_empty() || !printable(&self.secret_access_key) {
            return Err(Error::config(
                "s3 credentials: secret access key must be non-empty printable ASCII",
            ));
        }
        if self
            .session_token
            .as_ref()
            .is_some_and(|t| t.is_empty() || !printable(t))
        {
            return Err(Error::config(
                "s3 credentials: session token must be non-empty printable ASCII",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// How uploads are cut into parts. The defaults (8 MiB parts, 4 in flight) keep an upload's
/// buffers under about (`max_concurrent_parts` + 1) × `part_size` = 40 MiB whatever the object
/// size. (4 in flight rather than 2: on MinIO a 100 MiB upload then keeps up with one raw put
/// of the whole buffer; see `docs/benchmarks-blobstore.md`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadOptions {
    /// Size of each multipart part, and the largest object sent in one request.
    /// 5 MiB to 5 GiB (S3 limits). Default 8 MiB.
    pub part_size: usize,
    /// Parts uploaded concurrently. 1 to 64. Default 4.
    pub max_concurrent_parts: usize,
}

impl UploadOptions {
    /// Smallest part size S3 accepts (except for the last part).
    pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
    /// Largest part size S3 accepts.
    pub const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;

    /// Options with the given part size and concurrency; check with [`validate`](Self::validate).
    pub fn new(part_size: usize, max_concurrent_parts: usize) -> Self {
        Self {
            part_size,
            max_concurrent_parts,
        }
    }

    /// Checks the limits above.
    pub fn validate(&self) -> Result<(), Error> {
        if !(Self::MIN_PART_SIZE..=Self::MAX_PART_SIZE).contains(&self.part_size) {
            return Err(Error::config(format!(
                "upload part_size: must be between {} and {} bytes",
                Self::MIN_PART_SIZE,
                Self::MAX_PART_SIZE
            )));
        }
        if !(1..=64).contains(&self.max_concurrent_parts) {
            return Err(Error::config(
                "upload max_concurrent_parts: must be between 1 and 64",
            ));
        }
        Ok(())
    }
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self::new(8 * 1024 * 1024, 4)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn s3() -> S3Config {
        S3Config::new(
            Some("https://minio.example:9000".into()),
            "medfabric-blobs",
            "us-east-1",
            S3Credentials::new("AKIAEXAMPLE", "super-secret-key"),
        )
    }

    fn reason(config: &S3Config) -> String {
        match config.validate() {
            Err(Error::Config { reason }) => reason,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn valid_configs_pass() {
        s3().validate().unwrap();
        let mut aws = s3();
        aws.endpoint = None;
        aws.key_prefix = Some("hospital1/prod".into());
        aws.validate().unwrap();
        BlobStoreConfig::local("/tmp/x").validate().unwrap();
        UploadOptions::default().validate().unwrap();
    }

    #[test]
    fn http_needs_the_dangerous_flag() {
        let mut c = s3();
        c.endpoint = Some("http://127.0.0.1:9000".into());
        assert!(reason(&c).contains("plain http"));
        c.dangerous_allow_http = true;
        c.validate().unwrap();
    }

    #[test]
    fn bad_fields_are_named() {
        type Mutation = fn(&mut S3Config);
        let cases: Vec<(Mutation, &str)> = vec![
            (|c| c.bucket = "Upper".into(), "bucket"),
            (|c| c.bucket = "ab".into(), "bucket"),
            (|c| c.bucket = "-abc".into(), "bucket"),
            (|c| c.bucket = "a..b".into(), "bucket"),
            (|c| c.region = String::new(), "region"),
            (|c| c.endpoint = Some("ftp://host".into()), "scheme"),
            (|c| c.endpoint = Some("not a url".into()), "endpoint"),
            (
                |c| c.endpoint = Some("https://user:pw@host".into()),
                "user info",
            ),
            (|c| c.endpoint = Some("https://host/bucket".into()), "path"),
            (|c| c.endpoint = Some("https://host/?x=1".into()), "query"),
            (
                |c| c.credentials = S3Credentials::new("", "secret"),
                "access key",
            ),
            (
                |c| c.credentials = S3Credentials::new("id", "has space"),
                "secret",
            ),
            (|c| c.key_prefix = Some("/abs".into()), "key_prefix"),
            (|c| c.key_prefix = Some("a/../b".into()), "key_prefix"),
            (|c| c.request_timeout = Duration::ZERO, "timeouts"),
        ];
        for (mutate, needle) in cases {
            let mut c = s3();
            mutate(&mut c);
            let r = reason(&c);
            assert!(r.contains(needle), "{r:?} should mention {needle:?}");
        }
        assert!(BlobStoreConfig::local("").validate().is_err());
        assert!(UploadOptions::new(1024, 2).validate().is_err());
        assert!(UploadOptions::new(8 << 20, 0).validate().is_err());
    }

    #[test]
    fn debug_masks_secrets() {
        let c = S3Config {
            credentials: S3Credentials::new("AKIAEXAMPLE", "super-secret-key")
                .with_session_token("session-token-value"),
            ..s3()
        };
        let text = format!("{:?}", BlobStoreConfig::S3(c));
        assert!(text.contains("AKIAEXAMPLE"));
        assert!(!text.contains("super-secret-key"), "{text}");
        assert!(!text.contains("session-token-value"), "{text}");
    }
}
