//! A Lambda binary of this workspace run the way AWS runs it: a clean environment, an emulated
//! Runtime API, and its log output collected as it is written (so a chatty function never
//! blocks on a full pipe).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use crate::runtime_api::{Invocation, Outcome, RuntimeApi, workspace_binary};

pub struct LambdaProcess {
    runtime: RuntimeApi,
    child: Child,
    output: Arc<Mutex<String>>,
}

impl LambdaProcess {
    /// Starts `name` (`create-user`, `cleanup`) with only `vars` and the Lambda variables in
    /// its environment, and waits until it asks for its first event.
    pub async fn start<K, V>(
        name: &str,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, String>
    where
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let (runtime, mut child, output) = spawn(name, vars).await?;
        // A function that fails its init reports it and exits instead of asking for an event.
        let exited = tokio::select! {
            ready = runtime.wait_ready(Duration::from_secs(30)) => match ready {
                Ok(()) => None,
                Err(_) if runtime.init_error().is_some() => {
                    Some(tokio::time::timeout(Duration::from_secs(5), child.wait()).await)
                }
                Err(err) => return Err(err),
            },
            status = child.wait() => Some(Ok(status)),
        };
        if let Some(status) = exited {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let logs = output.lock().expect("log buffer").clone();
            let reported = runtime.init_error();
            return Err(format!(
                "{name} exited during init ({status:?}), reporting {reported:?}; its output:\n{logs}"
            ));
        }
        Ok(Self {
            runtime,
            child,
            output,
        })
    }

    /// One event, with the function's deadline 20 s away (the API Gateway integration's).
    pub async fn invoke(&self, event: Value) -> Result<Invocation, String> {
        self.runtime
            .invoke(event, Duration::from_secs(20), Duration::from_secs(30))
            .await
    }

    /// One event with a deadline `function_timeout` away; no answer a second after it is an Err.
    pub async fn invoke_within(
        &self,
        event: Value,
        function_timeout: Duration,
    ) -> Result<Invocation, String> {
        self.runtime
            .invoke(
                event,
                function_timeout,
                function_timeout + Duration::from_secs(1),
            )
            .await
    }

    /// What the process has written so far.
    pub fn logs_so_far(&self) -> String {
        self.output.lock().expect("log buffer").clone()
    }

    /// Kills the process (as a Lambda timeout or crash would) and returns what it logged.
    pub async fn kill(mut self) -> Logs {
        let _ = self.child.kill().await;
        // The readers finish once the pipes close.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let text = self.output.lock().expect("log buffer").clone();
        Logs { text }
    }
}

/// What Lambda saw of a start-up that failed.
#[derive(Debug)]
pub struct InitFailure {
    /// What the function POSTed to `/runtime/init/error`, if anything.
    pub reported: Option<Outcome>,
    pub exit: std::process::ExitStatus,
    pub logs: Logs,
}

impl LambdaProcess {
    /// Starts `name` expecting its init to fail, and waits at most `wait` for it to exit.
    /// An Err says it started serving, or was still in its init after `wait`.
    pub async fn failing_init<K, V>(
        name: &str,
        vars: impl IntoIterator<Item = (K, V)>,
        wait: Duration,
    ) -> Result<InitFailure, String>
    where
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let (runtime, mut child, output) = spawn(name, vars).await?;
        let exit = match tokio::time::timeout(wait, child.wait()).await {
            Ok(status) => status.map_err(|e| e.to_string())?,
            Err(_) => {
                let _ = child.kill().await;
                let serving = runtime.next_calls() > 0;
                return Err(format!(
                    "{name} was still running after {wait:?} (serving events: {serving})"
                ));
            }
        };
        // The readers finish once the pipes close.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let text = output.lock().expect("log buffer").clone();
        Ok(InitFailure {
            reported: runtime.init_error(),
            exit,
            logs: Logs { text },
        })
    }
}

async fn spawn<K, V>(
    name: &str,
    vars: impl IntoIterator<Item = (K, V)>,
) -> Result<(RuntimeApi, Child, Arc<Mutex<String>>), String>
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let runtime = RuntimeApi::start().await.map_err(|e| e.to_string())?;
    let mut child = Command::new(workspace_binary(name)?)
        .env_clear()
        .envs(vars)
        .envs(runtime.lambda_env(name))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let output = Arc::new(Mutex::new(String::new()));
    collect(child.stdout.take(), output.clone());
    collect(child.stderr.take(), output.clone());
    Ok((runtime, child, output))
}

fn collect(pipe: Option<impl AsyncRead + Unpin + Send + 'static>, into: Arc<Mutex<String>>) {
    let Some(mut pipe) = pipe else { return };
    tokio::spawn(async move {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            into.lock()
                .expect("log buffer")
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
}

/// What a function wrote to stdout and stderr.
#[derive(Debug)]
pub struct Logs {
    pub text: String,
}

impl Logs {
    /// The JSON lines (tracing events and EMF metrics), in order.
    pub fn json_lines(&self) -> Vec<Value> {
        self.text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The CloudWatch Embedded Metric Format lines for `metric`.
    pub fn metric(&self, metric: &str) -> Vec<Value> {
        self.json_lines()
            .into_iter()
            .filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == metric)
            .collect()
    }
}
