//! A real browser for tests: Debian's headless Chromium, driven by Debian's ChromeDriver through
//! the W3C WebDriver protocol (the HTTP+JSON protocol Selenium speaks, here over `reqwest`).
//! Both come from the OS's packages, which `make test` installs (`scripts/browser.sh`): nothing
//! is downloaded at run time. Chromium runs with the flags this kind of machine needs (no
//! sandbox as root, no background networking to the internet) and a throwaway profile.
//!
//! ChromeDriver runs in its own process group, so dropping the [`Browser`] ends it and the
//! Chromium it started, also when a test fails halfway.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Chromium and ChromeDriver are: `TEST_CHROMIUM`/`TEST_CHROMEDRIVER` (set by `make test`
/// from scripts/browser.sh), else Debian's paths. Panics with how to get them when missing: a
/// test that needs the browser never passes without it.
pub fn browser_paths() -> (PathBuf, PathBuf) {
    let path = |var: &str, default: &str| {
        let path = PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_string()));
        assert!(
            path.exists(),
            "{} is missing ({var}): the browser test needs Debian's chromium and chromium-driver; \
             `make test` installs them (scripts/browser.sh), or apt-get install chromium chromium-driver",
            path.display()
        );
        path
    };
    (
        path("TEST_CHROMIUM", "/usr/bin/chromium"),
        path("TEST_CHROMEDRIVER", "/usr/bin/chromedriver"),
    )
}

/// One Chromium session.
pub struct Browser {
    driver: Child,
    /// ChromeDriver's process group (its PID).
    group: Option<u32>,
    http: reqwest::Client,
    session: String,
    profile: PathBuf,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts ChromeDriver on a free port and a headless Chromium session.
    pub async fn start() -> Result<Browser, String> {
        let (chromium, chromedriver) = browser_paths();
        let port = free_port()?;
        let mut command = Command::new(&chromedriver);
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .process_group(0);
        let driver = command
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", chromedriver.display()))?;
        let group = driver.id();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|err| err.to_string())?;
        let base = format!("http://127.0.0.1:{port}");
        let profile = std::env::temp_dir().join(format!("browser-test-{}", uuid::Uuid::new_v4()));
        let mut browser = Browser {
            driver,
            group,
            http,
            session: base.clone(),
            profile: profile.clone(),
        };

        // ChromeDriver answers /status once it listens.
        let started = Instant::now();
        loop {
            let ready = browser.http.get(format!("{base}/status")).send().await;
            if let Ok(response) = ready
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err("chromedriver did not start within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--disable-quic",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--window-size=1024,768",
                            format!("--user-data-dir={}", profile.display()),
                        ],
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                }
            }
        });
        let answer = browser
            .call(
                reqwest::Method::POST,
                &format!("{base}/session"),
                Some(capabilities),
            )
            .await?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {answer}"))?;
        browser.session = format!("{base}/session/{id}");
        Ok(browser)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method.clone(), url);
        // WebDriver wants a JSON body on every POST, `{}` when there is nothing to say.
        if method == reqwest::Method::POST {
            request = request.json(&body.unwrap_or_else(|| json!({})));
        }
        let response = request
            .send()
            .await
            .map_err(|err| format!("{method} {url}: {err}"))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|err| format!("{method} {url}: {err}"))?;
        if !status.is_success() {
            return Err(format!("{method} {url}: {status} {}", answer["value"]));
        }
        Ok(answer["value"].clone())
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.session);
        self.call(method, &url, body).await
    }

    /// Opens `url` and waits until it loaded.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        let body = json!({ "script": script, "args": args });
        self.command(reqwest::Method::POST, "/execute/sync", Some(body))
            .await
    }

    /// The first element matching the CSS `selector`.
    pub async fn find(&self, selector: &str) -> Result<Element, String> {
        let body = json!({ "using": "css selector", "value": selector });
        let found = self
            .command(reqwest::Method::POST, "/element", Some(body))
            .await?;
        found[ELEMENT]
            .as_str()
            .map(|id| Element(id.to_string()))
            .ok_or_else(|| format!("no element {selector}: {found}"))
    }

    /// Waits (at most `within`) until the element of `selector` is displayed.
    pub async fn wait_displayed(
        &self,
        selector: &str,
        within: Duration,
    ) -> Result<Element, String> {
        let started = Instant::now();
        loop {
            if let Ok(element) = self.find(selector).await
                && self.is_displayed(&element).await?
            {
                return Ok(element);
            }
            if started.elapsed() > within {
                let shown = self.visible_text().await.unwrap_or_default();
                return Err(format!(
                    "{selector} was not displayed within {within:?}; the page shows:\n{shown}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn is_displayed(&self, element: &Element) -> Result<bool, String> {
        let path = format!("/element/{}/displayed", element.0);
        let shown = self.command(reqwest::Method::GET, &path, None).await?;
        Ok(shown == true)
    }

    /// The element's text as rendered (what a person sees of it).
    pub async fn text(&self, element: &Element) -> Result<String, String> {
        let path = format!("/element/{}/text", element.0);
        let text = self.command(reqwest::Method::GET, &path, None).await?;
        Ok(text.as_str().unwrap_or_default().to_string())
    }

    /// All the text the page shows.
    pub async fn visible_text(&self) -> Result<String, String> {
        let body = self.find("body").await?;
        self.text(&body).await
    }

    pub async fn attribute(&self, element: &Element, name: &str) -> Result<Option<String>, String> {
        let path = format!("/element/{}/attribute/{name}", element.0);
        let value = self.command(reqwest::Method::GET, &path, None).await?;
        Ok(value.as_str().map(str::to_string))
    }

    /// Types `text` into the element, as a person at the keyboard would.
    pub async fn type_into(&self, element: &Element, text: &str) -> Result<(), String> {
        let path = format!("/element/{}/value", element.0);
        self.command(reqwest::Method::POST, &path, Some(json!({ "text": text })))
            .await
            .map(drop)
    }

    pub async fn clear(&self, element: &Element) -> Result<(), String> {
        let path = format!("/element/{}/clear", element.0);
        self.command(reqwest::Method::POST, &path, None)
            .await
            .map(drop)
    }

    pub async fn click(&self, element: &Element) -> Result<(), String> {
        let path = format!("/element/{}/click", element.0);
        self.command(reqwest::Method::POST, &path, None)
            .await
            .map(drop)
    }

    /// The `id` of the element that has the keyboard focus.
    pub async fn focused_id(&self) -> Result<String, String> {
        let id = self
            .execute(
                "return document.activeElement && document.activeElement.id;",
                vec![],
            )
            .await?;
        Ok(id.as_str().unwrap_or_default().to_string())
    }

    /// The messages of the browser's console since the last call (ChromeDriver's log API).
    pub async fn console(&self) -> Result<Vec<String>, String> {
        let entries = self
            .command(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "browser" })),
            )
            .await?;
        Ok(entries
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["message"].as_str().map(str::to_string))
            .collect())
    }

    /// Ends the session (Chromium exits), then ChromeDriver.
    pub async fn quit(mut self) {
        let _ = self.command(reqwest::Method::DELETE, "", None).await;
        self.stop_driver();
    }

    fn stop_driver(&mut self) {
        if let Some(group) = self.group.take() {
            // The whole group: ChromeDriver and any Chromium process still there.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.driver.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stop_driver();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|err| err.to_string())?;
    Ok(listener.local_addr().map_err(|err| err.to_string())?.port())
}
