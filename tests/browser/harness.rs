//! What the browser tests drive: headless Chromium through chromedriver
//! (fantoccini), a real OpenID Connect provider process (Python's
//! `oidc-provider-mock`), axe-core injected into each page, and screenshots
//! written to `target/screenshots/<backend>/`.
//!
//! Without chromedriver, python3 with `oidc_provider_mock`, or axe-core
//! (`npm install --prefix target/browser-tools axe-core`), the tests say so
//! and are skipped — except in CI, where that is a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process in a process group of its own, stopped with everything
/// it started (chromedriver's Chromium, say) when dropped: what a test that
/// failed half-way leaves is gone too.
pub struct Process(Child);

impl Process {
    pub fn spawn(command: &mut Command) -> std::io::Result<Process> {
        use std::os::unix::process::CommandExt;
        command.process_group(0).spawn().map(Process)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The group's id is the child's: SIGKILL to all of it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The processes whose command line mentions `text` (from `/proc`).
pub fn processes_mentioning(text: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|line| String::from_utf8_lossy(&line).replace('\0', " "))
        .filter(|line| line.contains(text))
        .collect()
}

/// Where the tools are, when they all are.
pub struct Tools {
    pub chromedriver: PathBuf,
    pub chromium: PathBuf,
    pub axe: String,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// The tools, or `None` (after saying what is missing) outside CI.
pub fn tools() -> Option<Tools> {
    let axe_path = std::env::var_os("AXE_CORE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/browser-tools/node_modules/axe-core/axe.min.js")
        });
    let mock = Command::new("python3")
        .args(["-c", "import oidc_provider_mock"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let found = (
        on_path("chromedriver"),
        on_path("chromium").or_else(|| on_path("chromium-browser")),
        std::fs::read_to_string(&axe_path).ok(),
        mock,
    );
    match found {
        (Some(chromedriver), Some(chromium), Some(axe), true) => Some(Tools {
            chromedriver,
            chromium,
            axe,
        }),
        (driver, browser, axe, mock) => {
            let missing = format!(
                "chromedriver: {}, chromium: {}, axe-core at {}: {}, python3 oidc_provider_mock: {}",
                driver.is_some(),
                browser.is_some(),
                axe_path.display(),
                axe.is_some(),
                mock
            );
            crate::helpers::skip(&format!("browser tools missing ({missing})"));
            None
        }
    }
}

async fn wait_for(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

/// A real OpenID Connect provider: `oidc-provider-mock`, whose sign-in page
/// is a form that takes a `sub`.
pub struct Provider {
    pub issuer: String,
    _process: Process,
}

impl Provider {
    pub async fn start() -> Provider {
        let port = free_port();
        let process = Process::spawn(
            Command::new("python3")
                .args(["-m", "oidc_provider_mock", "--port", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("oidc-provider-mock starts");
        let issuer = format!("http://127.0.0.1:{port}");
        wait_for(&format!("{issuer}/.well-known/openid-configuration")).await;
        Provider {
            issuer,
            _process: process,
        }
    }

    /// Sets the claims the provider gives `sub` (`roles` among them).
    pub async fn person(&self, sub: &str, email: &str, name: &str, roles: &[&str]) {
        let claims = json!({"email": email, "name": name, "roles": roles});
        let response = reqwest::Client::new()
            .put(format!("{}/users/{sub}", self.issuer))
            .json(&claims)
            .send()
            .await
            .expect("the provider answers");
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );
    }
}

/// Headless Chromium, driven through chromedriver. End it with `close`;
/// dropped (a test failed), chromedriver and its browsers are killed.
pub struct Browser {
    pub client: Client,
    _driver: Process,
    /// `clearance-browser-…`: Chromium's profile and chromedriver's log, and
    /// how `.ci/run` finds what a run left behind.
    folder: tempfile::TempDir,
}

impl Browser {
    pub async fn start(tools: &Tools) -> Browser {
        let port = free_port();
        let folder = tempfile::Builder::new()
            .prefix("clearance-browser-")
            .tempdir()
            .expect("a folder for the browser");
        let driver = Process::spawn(
            Command::new(&tools.chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!(
                    "--log-path={}",
                    folder.path().join("chromedriver.log").display()
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        wait_for(&format!("{url}/status")).await;
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--window-size=1280,1400".into(),
            format!(
                "--user-data-dir={}",
                folder.path().join("profile").display()
            ),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": tools.chromium, "args": args},
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a browser session");
        Browser {
            client,
            _driver: driver,
            folder,
        }
    }

    /// Ends the session (chromedriver quits Chromium), then chromedriver,
    /// and checks that no process of this browser is left.
    pub async fn close(self) {
        let folder = self.folder.path().display().to_string();
        self.client.clone().close().await.expect("the session ends");
        drop(self);
        let mut left = processes_mentioning(&folder);
        for _ in 0..100 {
            if left.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            left = processes_mentioning(&folder);
        }
        panic!("the browser left processes behind: {left:#?}");
    }
}

/// A person at the console in the browser.
pub struct Console<'a> {
    pub app: &'a TestApp,
    pub browser: &'a Browser,
    pub axe: &'a str,
    pub shots: PathBuf,
}

impl Console<'_> {
    pub fn client(&self) -> &Client {
        &self.browser.client
    }

    pub async fn goto(&self, path: &str) {
        self.client()
            .goto(&self.app.url(path))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }

    /// What the page says, as a person reads it.
    pub async fn text(&self) -> String {
        let body = self
            .client()
            .find(Locator::Css("body"))
            .await
            .expect("a body");
        body.text().await.expect("the page's text")
    }

    pub async fn path(&self) -> String {
        let url = self.client().current_url().await.expect("a URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Signs `sub` in through the identity provider's own page.
    pub async fn sign_in(&self, sub: &str) {
        self.goto("/signin").await;
        self.authorize(sub).await;
        let path = self.client().current_url().await.unwrap();
        assert_eq!(
            path.as_str(),
            self.app.url("/"),
            "back at the console's home"
        );
        let text = self.text().await;
        assert!(text.contains("My work"), "{sub} signed in: {text}");
    }

    /// From the sign-in page, signs `sub` in at the identity provider and
    /// comes back to wherever the console sends them.
    pub async fn authorize(&self, sub: &str) {
        self.click_link("Sign in with").await;
        let field = self
            .client()
            .wait()
            .for_element(Locator::Css("input[name=sub]"))
            .await
            .expect("the provider's sign-in form");
        field.send_keys(sub).await.unwrap();
        let old = self.page_element().await;
        self.client()
            .find(Locator::XPath("//button[normalize-space()='Authorize']"))
            .await
            .expect("the Authorize button")
            .click()
            .await
            .unwrap();
        self.next_page(old).await;
    }

    pub async fn sign_out(&self) {
        self.click_button("Sign out").await;
        let text = self.text().await;
        assert!(text.contains("You have signed out"), "{text}");
    }

    pub async fn click_link(&self, text: &str) {
        let xpath = format!("//a[contains(normalize-space(), '{text}')]");
        let old = self.page_element().await;
        self.client()
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("a link `{text}`: {e}"))
            .click()
            .await
            .unwrap();
        self.next_page(old).await;
    }

    /// Waits until the page that `old` (its `html` element) belonged to is
    /// gone and the next one has loaded, its scripts run.
    pub async fn next_page(&self, old: fantoccini::elements::Element) {
        for _ in 0..200 {
            if old.tag_name().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for _ in 0..200 {
            let state = self
                .client()
                .execute("return document.readyState;", vec![])
                .await;
            if matches!(state, Ok(Value::String(s)) if s == "complete") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the next page did not load");
    }

    async fn page_element(&self) -> fantoccini::elements::Element {
        self.client()
            .find(Locator::Css("html"))
            .await
            .expect("a page")
    }

    /// Clicks the button reading `text` (in `scope`, a CSS selector, when
    /// given), and waits for the page the form leads to.
    pub async fn click_button_in(&self, scope: Option<&str>, text: &str) {
        let old = self.page_element().await;
        self.press(scope, text).await;
        self.next_page(old).await;
    }

    /// Clicks the button reading `text` without waiting (it opens a dialog).
    pub async fn press(&self, scope: Option<&str>, text: &str) {
        let xpath = format!("//button[normalize-space()='{text}']");
        let button = match scope {
            Some(css) => {
                let area = self
                    .client()
                    .find(Locator::Css(css))
                    .await
                    .unwrap_or_else(|e| panic!("{css}: {e}"));
                area.find(Locator::XPath(&format!(".{xpath}"))).await
            }
            None => self.client().find(Locator::XPath(&xpath)).await,
        };
        button
            .unwrap_or_else(|e| panic!("a button `{text}`: {e}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn click_button(&self, text: &str) {
        self.click_button_in(None, text).await;
    }

    /// Types `value` into the field `name` (in `scope`, when given).
    pub async fn fill_in(&self, scope: Option<&str>, name: &str, value: &str) {
        let css = match scope {
            Some(scope) => format!("{scope} [name='{name}']"),
            None => format!("[name='{name}']"),
        };
        let field = self
            .client()
            .find(Locator::Css(&css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn fill(&self, name: &str, value: &str) {
        self.fill_in(None, name, value).await;
    }

    /// Chooses the radio button or checkbox `name` = `value`.
    pub async fn choose(&self, scope: &str, name: &str, value: &str) {
        let css = format!("{scope} input[name='{name}'][value='{value}']");
        let element = self
            .client()
            .find(Locator::Css(&css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        if let Err(error) = element.click().await {
            self.shot("failure").await;
            let html = self
                .client()
                .execute(
                    "return arguments[0].closest('.question').outerHTML;",
                    vec![serde_json::to_value(&element).unwrap()],
                )
                .await;
            panic!("clicking {css}: {error}\n{html:?}");
        }
    }

    /// Answers a questionnaire in the form `scope` as a person would:
    /// clicking choices and typing text, question by question.
    pub async fn answer(&self, scope: &str, answers: &[(String, Value)]) {
        for (id, value) in answers {
            let name = format!("q_{id}");
            match value {
                Value::Bool(b) => self.choose(scope, &name, &b.to_string()).await,
                Value::Array(items) => {
                    for item in items {
                        self.choose(scope, &name, item.as_str().unwrap()).await;
                    }
                }
                Value::String(text) => {
                    let css = format!("{scope} [name='{name}']");
                    let field = self.client().find(Locator::Css(&css)).await.unwrap();
                    let kind = field.attr("type").await.unwrap().unwrap_or_default();
                    match kind.as_str() {
                        "radio" => self.choose(scope, &name, text).await,
                        // A date field's typing depends on the locale; set it.
                        "date" => {
                            self.client()
                                .execute(
                                    "arguments[0].value = arguments[1];\
                                     arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
                                    vec![serde_json::to_value(&field).unwrap(), json!(text)],
                                )
                                .await
                                .unwrap();
                        }
                        _ => {
                            if let Err(error) = field.clear().await {
                                self.shot("failure").await;
                                let html = self
                                    .client()
                                    .execute(
                                        "return arguments[0].closest('.question').outerHTML;",
                                        vec![serde_json::to_value(&field).unwrap()],
                                    )
                                    .await;
                                panic!("typing into {css}: {error}\n{html:?}");
                            }
                            field.send_keys(text).await.unwrap();
                        }
                    }
                }
                other => self.fill_in(Some(scope), &name, &other.to_string()).await,
            }
        }
    }

    pub async fn is_displayed(&self, css: &str) -> bool {
        self.client()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .is_displayed()
            .await
            .unwrap()
    }

    /// Runs axe-core on the page; fails on any serious or critical violation.
    pub async fn axe(&self, page: &str) {
        self.client()
            .execute(self.axe, vec![])
            .await
            .expect("axe-core loads");
        let result = self
            .client()
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']})\
                   .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,\
                     nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))))\
                   .catch(e => done([{id: 'axe-failed', impact: 'critical', help: String(e), nodes: []}]));",
                vec![],
            )
            .await
            .expect("axe runs");
        let serious: Vec<&Value> = result
            .as_array()
            .expect("violations")
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            serious.is_empty(),
            "{page}: axe finds serious or critical violations: {}",
            serde_json::to_string_pretty(&serious).unwrap()
        );
    }

    /// Keeps a screenshot of the page as a desktop shows it (`name.png`,
    /// 1,280 px wide) and as a phone does (`name-390.png`, 390 px wide),
    /// and fails when, at either width, the page scrolls sideways or
    /// anything on it (collapsed sections opened) sits past its right edge.
    pub async fn shot(&self, name: &str) {
        std::fs::create_dir_all(&self.shots).unwrap();
        self.fits(name, 1280).await;
        let png = self.client().screenshot().await.expect("a screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
        let client = self.client();
        client
            .set_window_size(390, 844)
            .await
            .expect("a phone-sized window");
        self.fits(name, 390).await;
        let png = client.screenshot().await.expect("a screenshot");
        std::fs::write(self.shots.join(format!("{name}-390.png")), png).unwrap();
        client
            .set_window_size(1280, 1400)
            .await
            .expect("the desktop window again");
    }

    /// Fails when the page, `width` px wide, scrolls sideways or shows
    /// anything past its right edge (outside a part meant to scroll), with
    /// every collapsed section opened; they are closed again after.
    async fn fits(&self, name: &str, width: u32) {
        let found = self
            .client()
            .execute(
                "const opened = [...document.querySelectorAll('details:not([open])')];\
                 opened.forEach(d => d.open = true);\
                 const edge = document.documentElement.clientWidth;\
                 const scrolls = e => { for (let a = e.parentElement; a; a = a.parentElement) {\
                   const o = getComputedStyle(a).overflowX; if (o === 'auto' || o === 'scroll') return true; }\
                   return false; };\
                 const past = [...document.body.querySelectorAll('*')].filter(e => {\
                   const r = e.getBoundingClientRect();\
                   return r.width > 0 && r.height > 0 && r.right > edge + 1 && !scrolls(e); })\
                   .slice(0, 5).map(e => `${e.tagName.toLowerCase()}.${e.className} (right edge at ${Math.round(e.getBoundingClientRect().right)} px): ${(e.textContent || '').trim().slice(0, 60)}`);\
                 const sideways = document.documentElement.scrollWidth - edge;\
                 opened.forEach(d => d.open = false);\
                 return {sideways, past};",
                vec![],
            )
            .await
            .expect("the page's width is measured");
        let sideways = found["sideways"].as_i64().unwrap_or_default();
        let past = found["past"].as_array().cloned().unwrap_or_default();
        assert!(
            sideways <= 0 && past.is_empty(),
            "{name} at {width} px: the page scrolls {sideways} px sideways; past the right edge: {}",
            serde_json::to_string_pretty(&past).unwrap()
        );
    }

    /// What the element `css` says.
    pub async fn text_of(&self, css: &str) -> String {
        self.client()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// Checks the page for accessibility and keeps a screenshot of it.
    pub async fn look(&self, name: &str) {
        self.axe(name).await;
        self.shot(name).await;
    }
}
