//! `strata admin`: a client of the root-only admin API a running `strata serve` offers on its S3 listener
//! (`/_strata/admin/v1/`, see `strata_gateway::admin`). Requests are signed with the shared SigV4 signer of
//! the bench crate, as the root user: keys from STRATA_ACCESS_KEY / STRATA_SECRET_KEY, else from the
//! credentials.toml that `strata serve` keeps in its data directory.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Subcommand;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use strata_bench::sigv4::{self, SignInput, Signer};

/// Where the server is and whose keys sign the requests.
#[derive(clap::Args, Debug)]
pub(crate) struct Connection {
    /// The server's S3 endpoint.
    #[arg(long, global = true, default_value = "http://127.0.0.1:9000")]
    endpoint: String,
    /// Data directory of the server, whose credentials.toml holds the root keys (used when
    /// STRATA_ACCESS_KEY / STRATA_SECRET_KEY are not set).
    #[arg(long, global = true, default_value = "./data")]
    data: PathBuf,
    /// Region to sign for.
    #[arg(
        long,
        global = true,
        env = "STRATA_REGION",
        default_value = "us-east-1"
    )]
    region: String,
}

/// `strata admin ...`
#[derive(clap::Args, Debug)]
pub(crate) struct AdminArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Manage users (access keys other than root).
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user; prints its keys (the secret is shown only this once).
    Add {
        /// Display name (letters, digits and +=,.@_-).
        name: String,
        /// Access key to use instead of a random one.
        #[arg(long)]
        access_key: Option<String>,
        /// Secret key to use instead of a random one.
        #[arg(long)]
        secret_key: Option<String>,
    },
    /// List users.
    List,
    /// Remove a user.
    Remove {
        /// The user's access key.
        access_key: String,
    },
    /// Attach an IAM identity policy (JSON) to a user, or detach it with --clear.
    SetPolicy {
        /// The user's access key.
        access_key: String,
        /// Policy file, `-` for standard input.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        file: Option<PathBuf>,
        /// Remove the user's policy.
        #[arg(long)]
        clear: bool,
    },
}

/// Runs one admin command.
pub(crate) async fn run(args: AdminArgs) -> Result<()> {
    let client = AdminClient::new(&args.conn)?;
    match args.command {
        AdminCommand::User(cmd) => user(&client, cmd).await,
    }
}

async fn user(client: &AdminClient, cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            access_key,
            secret_key,
        } => {
            let body = serde_json::json!({
                "name": name, "access_key": access_key, "secret_key": secret_key,
            });
            let out = client
                .call(Method::POST, "users", body.to_string().into())
                .await?;
            let user: serde_json::Value = serde_json::from_slice(&out)?;
            println!("User:      {}", field(&user, "display_name"));
            println!("AccessKey: {}", field(&user, "access_key"));
            println!("SecretKey: {}", field(&user, "secret_key"));
            println!("(the secret key is not shown again)");
        }
        UserCommand::List => {
            let out = client.call(Method::GET, "users", Bytes::new()).await?;
            let doc: serde_json::Value = serde_json::from_slice(&out)?;
            println!(
                "{:<24} {:<24} {:<26} POLICY",
                "ACCESS KEY", "NAME", "CREATED"
            );
            for u in doc["users"].as_array().into_iter().flatten() {
                println!(
                    "{:<24} {:<24} {:<26} {}",
                    field(u, "access_key"),
                    field(u, "display_name"),
                    field(u, "created"),
                    if u["has_policy"] == true { "yes" } else { "-" }
                );
            }
        }
        UserCommand::Remove { access_key } => {
            let path = format!("users/{}", sigv4::uri_encode(&access_key, false));
            client.call(Method::DELETE, &path, Bytes::new()).await?;
            println!("Removed {access_key}");
        }
        UserCommand::SetPolicy {
            access_key,
            file,
            clear,
        } => {
            let path = format!("users/{}/policy", sigv4::uri_encode(&access_key, false));
            if clear {
                client.call(Method::DELETE, &path, Bytes::new()).await?;
                println!("Cleared the policy of {access_key}");
            } else {
                let file = file.context("a policy FILE (or - for stdin) is required")?;
                let policy = read_policy(&file)?;
                client.call(Method::PUT, &path, policy.into()).await?;
                println!("Set the policy of {access_key}");
            }
        }
    }
    Ok(())
}

fn field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or("")
}

fn read_policy(file: &std::path::Path) -> Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        use std::io::Read;
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        return Ok(buf);
    }
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}

/// Signs and sends admin API requests.
struct AdminClient {
    http: Client<HttpConnector, Full<Bytes>>,
    signer: Signer,
    /// `http://host:port`, no trailing slash.
    base: String,
    host: String,
}

impl AdminClient {
    fn new(conn: &Connection) -> Result<Self> {
        let uri: Uri = conn
            .endpoint
            .parse()
            .with_context(|| format!("invalid endpoint {:?}", conn.endpoint))?;
        if uri.scheme_str() != Some("http") {
            bail!(
                "the endpoint must start with http:// (got {:?})",
                conn.endpoint
            );
        }
        let host = uri
            .authority()
            .context("the endpoint has no host")?
            .as_str()
            .to_owned();
        let (access, secret, _) = crate::root_credentials_existing(&conn.data)?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            signer: Signer::new(&access, &secret, &conn.region),
            base: format!("http://{host}"),
            host,
        })
    }

    /// Sends one request to `/_strata/admin/v1/<path>`; the body of a 2xx answer, else an error naming the
    /// server's error code and message.
    async fn call(&self, method: Method, path: &str, body: Bytes) -> Result<Bytes> {
        let path = format!("/_strata/admin/v1/{path}");
        let amz_date = sigv4::amz_date_now();
        let hash = sigv4::sha256_hex(&body);
        let headers = [
            ("host", self.host.as_str()),
            ("x-amz-content-sha256", hash.as_str()),
            ("x-amz-date", amz_date.as_str()),
        ];
        let authorization = self.signer.authorization(&SignInput {
            method: method.as_str(),
            canonical_uri: &path,
            canonical_query: "",
            headers: &headers,
            payload_hash: &hash,
            amz_date: &amz_date,
        });
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("x-amz-content-sha256", &hash)
            .header("x-amz-date", &amz_date)
            .header("authorization", authorization)
            .body(Full::new(body))?;
        let resp = tokio::time::timeout(Duration::from_secs(60), self.http.request(req))
            .await
            .context("the server did not answer within 60 s")?
            .with_context(|| format!("connecting to {}", self.base))?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if status.is_success() {
            return Ok(body);
        }
        bail!("{}", describe_error(status, &body))
    }
}

/// `Code: Message` from an S3 error document, or the status when there is none.
fn describe_error(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let tag = |name: &str| -> Option<String> {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(
            text[start..end]
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(msg)) => format!("{code}: {msg} (HTTP {})", status.as_u16()),
        (Some(code), None) => format!("{code} (HTTP {})", status.as_u16()),
        _ => format!("the server answered HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_are_summarised() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchEntity</Code><Message>The user &amp; co</Message></Error>";
        assert_eq!(
            describe_error(StatusCode::NOT_FOUND, body),
            "NoSuchEntity: The user & co (HTTP 404)"
        );
        assert_eq!(
            describe_error(StatusCode::BAD_GATEWAY, b""),
            "the server answered HTTP 502 Bad Gateway"
        );
    }
}
