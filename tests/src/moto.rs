//! moto's server as Secrets Manager: the real AWS SDK pointed at it, secrets created per test,
//! and the server's own request recording to count what it was asked.

use base64::Engine;
use serde_json::Value;
use uuid::Uuid;

pub struct Moto {
    pub url: String,
}

impl Moto {
    /// The server `make test` started (TEST_MOTO_URL).
    pub fn from_env() -> Moto {
        let url = std::env::var("TEST_MOTO_URL")
            .expect("TEST_MOTO_URL must point at moto_server; `make test` starts one");
        Moto { url }
    }

    /// What a Lambda would have in its environment to reach "AWS" here.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.url.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The same settings as an SDK config, without touching the process environment.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .endpoint_url(&self.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(
                aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(
                    aws_sdk_secretsmanager::config::Credentials::new(
                        "testing", "testing", None, None, "moto",
                    ),
                ),
            )
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    fn client(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config())
    }

    /// Creates a secret under a name no other test uses; returns its ARN.
    pub async fn create_secret(&self, label: &str, value: &str) -> String {
        let name = format!("test/{label}/{}", Uuid::new_v4().simple());
        let created = self
            .client()
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("moto creates the secret");
        created.arn().expect("moto returns an ARN").to_string()
    }

    pub async fn put_secret(&self, arn: &str, value: &str) {
        self.client()
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value)
            .send()
            .await
            .expect("moto stores the new version");
    }

    /// GetSecretValue calls moto received for this secret, from its request recording.
    pub async fn get_secret_value_calls(&self, arn: &str) -> usize {
        let recording = reqwest::get(format!("{}/moto-api/recorder/download-recording", self.url))
            .await
            .expect("moto answers")
            .text()
            .await
            .expect("a recording");
        recording
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| {
                entry["headers"]["X-Amz-Target"] == "secretsmanager.GetSecretValue"
                    || entry["headers"]["x-amz-target"] == "secretsmanager.GetSecretValue"
            })
            .filter(|entry| body_text(entry).contains(arn))
            .count()
    }
}

fn body_text(entry: &Value) -> String {
    let body = entry["body"].as_str().unwrap_or_default();
    if entry["body_encoded"] == true {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    } else {
        body.to_string()
    }
}
