//! The web UI in a real browser: headless Chromium driven over WebDriver,
//! against the real `dag ui` process. Runs started from the form, task
//! states and logs followed live, cancel and resume, the history grid,
//! comparing runs, hostile text shown as text, signing in, and the model
//! registry (promotion, rollback, lineage), experiments and drift, and a
//! 10,000-task DAG's page kept small.
//!
//! With `DAG_UI_SCREENSHOTS=docs/ui` these tests also write the README's
//! screenshots.

use serde_json::Value;

use super::support::Project;
use super::ui_support::{GREETING, TINY_MODEL, TINY_MONITORING, Ui, tiny_table};
use super::webdriver::{Browser, Element};

/// The graph node of `task` on the current page.
fn node_status(browser: &Browser, task: &str) -> Option<String> {
    browser.query_attribute(&format!("svg [data-task=\"{task}\"]"), "data-status")
}

fn wait_node(browser: &Browser, task: &str, status: &str) {
    browser.wait_for(&format!("`{task}` to show `{status}`"), || {
        (node_status(browser, task).as_deref() == Some(status)).then_some(())
    });
}

fn run_id_of(url: &str) -> String {
    url.rsplit("/runs/")
        .next()
        .and_then(|rest| rest.split(['?', '#', '/']).next())
        .unwrap_or_default()
        .to_string()
}

/// Starts a run of `greeting` from its form with `word`; returns its id.
fn run_from_form(browser: &Browser, ui: &Ui, word: &str) -> String {
    browser.goto(&ui.url("/dags/greeting/run"));
    let input = browser.find("#param-word");
    browser.type_into(&input, word);
    browser.click(&browser.find("#run-form button[type=submit]"));
    let url = browser.wait_for("the run page", || {
        let url = browser.url();
        url.contains("/runs/").then_some(url)
    });
    run_id_of(&url)
}

fn mark_document(browser: &Browser) {
    browser.script("window.__sameDocument = 'yes'; return true;");
}

fn same_document(browser: &Browser) -> bool {
    browser.script("return window.__sameDocument || null;") == "yes"
}

fn release(project: &Project, word: &str) {
    std::fs::write(project.path().join(format!("release-{word}")), "").expect("release a task");
}

#[test]
fn a_run_started_from_the_form_is_followed_live_compared_cancelled_and_resumed() {
    let project = Project::new();
    project.write("dags/greeting.yaml", GREETING);
    let ui = Ui::start(&project, None);
    let browser = Browser::start();

    // The DAG list, and its run button.
    browser.goto(&ui.url("/"));
    let row = browser.find("tr[data-dag=\"greeting\"]");
    assert!(browser.text(&row).contains("greets, then waits"));
    browser.screenshot("dags");
    browser.click(&browser.find("tr[data-dag=\"greeting\"] a.button"));
    browser.wait_for("the run form", || {
        browser.url().ends_with("/dags/greeting/run").then_some(())
    });

    // The browser checks types before anything is sent.
    let times = browser.find("#param-times");
    browser.type_into(&times, "1.5");
    browser.click(&browser.find("#run-form button[type=submit]"));
    assert!(browser.url().ends_with("/dags/greeting/run"));
    assert_eq!(
        browser.script("return document.querySelector('#param-times').validity.valid;"),
        Value::Bool(false)
    );
    browser.type_into(&times, "3");
    browser.type_into(&browser.find("#param-word"), "browser");
    browser.screenshot("run-form");
    browser.click(&browser.find("#run-form button[type=submit]"));
    let first = browser.wait_for("the run page", || {
        let url = browser.url();
        url.contains("/runs/").then(|| run_id_of(&url))
    });

    // Live: the task runs, then (released) everything succeeds, all in
    // the document that was loaded while it ran.
    mark_document(&browser);
    wait_node(&browser, "greet", "running");
    assert_eq!(node_status(&browser, "wrap_up").as_deref(), Some("pending"));
    let params = browser.text(&browser.find("table.params"));
    assert!(
        params.contains("browser") && params.contains('3'),
        "{params}"
    );
    browser.screenshot("run-live");
    release(&project, "browser");
    wait_node(&browser, "greet", "succeeded");
    wait_node(&browser, "wrap_up", "succeeded");
    browser.wait_for("the run to show succeeded", || {
        (browser.query_text("[data-run-status]").as_deref() == Some("succeeded")).then_some(())
    });
    assert!(
        same_document(&browser),
        "the page reloaded instead of following events"
    );

    // The finished task's log, opened from the task table (refreshed in place).
    browser.press("a[href*=\"/logs/greet\"]");
    let log = browser.find("pre#log");
    let text = browser.text(&log);
    assert!(
        text.contains("hello browser 3") && text.contains("released browser"),
        "{text}"
    );

    // A log that follows its running attempt.
    let second = run_from_form(&browser, &ui, "second");
    wait_node(&browser, "greet", "running");
    browser.goto(&ui.url(&format!("/runs/{second}/logs/greet")));
    let log = browser.find("pre#log");
    browser.wait_for("the first lines", || {
        browser.text(&log).contains("hello second 2").then_some(())
    });
    assert!(browser.attribute(&log, "data-log-stream").is_some());
    mark_document(&browser);
    browser.screenshot("log-live");
    release(&project, "second");
    browser.wait_for("the released line and the end", || {
        (browser.text(&log).contains("released second")
            && browser.attribute(&log, "data-finished").as_deref() == Some("true"))
        .then_some(())
    });
    assert!(same_document(&browser), "the log page reloaded");

    // The run page links the comparison with the run before it.
    browser.goto(&ui.url(&format!("/runs/{second}")));
    click_text(&browser, "#facts a.button", "Compare with the previous run");
    browser.wait_for("the comparison", || {
        browser
            .url()
            .ends_with(&format!("/diff/{first}/{second}"))
            .then_some(())
    });

    // The DAG page: graph of the newest run and the history grid.
    browser.goto(&ui.url("/dags/greeting"));
    browser.wait_for("the newest run's states", || {
        (node_status(&browser, "wrap_up").as_deref() == Some("succeeded")).then_some(())
    });
    assert_eq!(browser.find_all("table.grid th.run").len(), 2);
    assert_eq!(
        browser
            .find_all("table.grid tbody td.cell[data-status=\"succeeded\"]")
            .len(),
        4
    );
    browser.screenshot("dag");

    // Compare the two runs from the DAG page's form.
    browser.script(&format!(
        "document.querySelector('#diff-a').value = '{first}'; document.querySelector('#diff-b').value = '{second}'; return true;"
    ));
    browser.click(&browser.find("form[action=\"/diff\"] button"));
    let changes = browser.find("#param-changes");
    let text = browser.text(&changes);
    assert!(
        text.contains("browser") && text.contains("second"),
        "{text}"
    );
    assert!(browser.url().ends_with(&format!("/diff/{first}/{second}")));
    browser.screenshot("diff");

    // Cancel a running run, then resume it.
    let third = run_from_form(&browser, &ui, "stop");
    wait_node(&browser, "greet", "running");
    browser.press("#facts button.danger");
    // A cancelled run ends `cancelled`, and so does its running task.
    wait_node(&browser, "greet", "cancelled");
    browser.wait_for("the run to end cancelled", || {
        (browser.query_text("[data-run-status]").as_deref() == Some("cancelled")).then_some(())
    });
    release(&project, "stop");
    browser.press("#facts button.primary");
    let resumed = browser.wait_for("the resumed run's page", || {
        let id = run_id_of(&browser.url());
        (id != third && !id.is_empty()).then_some(id)
    });
    wait_node(&browser, "wrap_up", "succeeded");
    let facts = browser.query_text("#facts").unwrap_or_default();
    assert!(facts.contains(&format!("resume run {third}")), "{facts}");
    assert!(facts.contains(&third), "{facts}");
    assert_ne!(resumed, third);
}

const PAYLOAD_DESCRIPTION: &str =
    r#"<script>window.__pwned=1</script>"><img src=x onerror="window.__pwned=2">"#;
const PAYLOAD_PARAM: &str =
    r#"<script>window.__pwned=3</script>"><img src=x onerror="window.__pwned=4">"#;

fn assert_inert(browser: &Browser, page: &str, expected_text: &[&str]) {
    assert_eq!(
        browser.script("return typeof window.__pwned;"),
        Value::from("undefined"),
        "a script ran on {page}"
    );
    assert_eq!(
        browser.script("return document.querySelectorAll('img').length;"),
        Value::from(0),
        "an injected element exists on {page}"
    );
    assert_eq!(
        browser.script(
            "return Array.from(document.scripts).filter(s => !s.src.includes('/assets/app.js')).length;"
        ),
        Value::from(0),
        "an injected script element exists on {page}"
    );
    let text = browser.body_text();
    for expected in expected_text {
        assert!(
            text.contains(expected),
            "{page} does not show `{expected}` as text:\n{text}"
        );
    }
}

#[test]
fn hostile_descriptions_params_and_logs_show_as_text_and_never_run() {
    let project = Project::new();
    project.write(
        "dags/hostile.yaml",
        &format!(
            "name: hostile\ndescription: '{PAYLOAD_DESCRIPTION}'\nparams:\n  note: '{PAYLOAD_PARAM}'\ntasks:\n  shout:\n    operator: shell\n    params:\n      command: \"echo '{{{{ params.note }}}}'; echo '<script>window.__pwned=5</script>'\"\n"
        ),
    );
    let ui = Ui::start(&project, None);
    let browser = Browser::start();
    browser.goto(&ui.url("/"));
    assert_inert(&browser, "/", &[PAYLOAD_DESCRIPTION]);
    browser.goto(&ui.url("/dags/hostile/run"));
    let note = browser.find("#param-note");
    assert_eq!(
        browser.attribute(&note, "value").as_deref(),
        Some(PAYLOAD_PARAM)
    );
    assert_inert(&browser, "the run form", &[PAYLOAD_DESCRIPTION]);
    browser.click(&browser.find("#run-form button[type=submit]"));
    let run = browser.wait_for("the run page", || {
        let url = browser.url();
        url.contains("/runs/").then(|| run_id_of(&url))
    });
    wait_node(&browser, "shout", "succeeded");
    assert_inert(&browser, "the run page", &[PAYLOAD_PARAM]);
    browser.goto(&ui.url(&format!("/runs/{run}/logs/shout")));
    let log = browser.find("pre#log");
    browser.wait_for("the log", || {
        browser.text(&log).contains("__pwned=5").then_some(())
    });
    assert_inert(
        &browser,
        "the log",
        &[PAYLOAD_PARAM, "<script>window.__pwned=5</script>"],
    );
    for page in ["/dags/hostile", "/experiments/hostile"] {
        browser.goto(&ui.url(page));
        browser.find("main h1");
        assert_inert(&browser, page, &[]);
    }
}

#[test]
fn a_browser_signs_in_with_the_token_and_gets_a_cookie_scripts_cannot_read() {
    let project = Project::new();
    project.write("dags/greeting.yaml", GREETING);
    let token = "browser-token-0123456789";
    let ui = Ui::start(&project, Some(token));
    let browser = Browser::start();
    browser.goto(&ui.url("/dags/greeting"));
    browser.wait_for("the sign-in page", || {
        browser.url().contains("/login").then_some(())
    });
    browser.type_into(&browser.find("#token"), "not-the-right-token");
    browser.click(&browser.find("form[action=\"/login\"] button"));
    assert!(
        browser
            .text(&browser.find(".error-box"))
            .contains("not the daemon's token")
    );
    browser.type_into(&browser.find("#token"), token);
    browser.click(&browser.find("form[action=\"/login\"] button"));
    browser.wait_for("the page asked for", || {
        browser.url().ends_with("/dags/greeting").then_some(())
    });
    assert_eq!(browser.script("return document.cookie;"), Value::from(""));
    // The page follows the system's colour scheme.
    let background = "return getComputedStyle(document.body).backgroundColor;";
    assert_eq!(
        browser.script(background),
        Value::from("rgb(255, 255, 255)")
    );
    browser.prefer_color_scheme("dark");
    assert_eq!(browser.script(background), Value::from("rgb(13, 17, 23)"));
    browser.screenshot("dark");
    browser.prefer_color_scheme("light");
    browser.click(&browser.find("form[action=\"/logout\"] button"));
    browser.wait_for("the sign-in page again", || {
        browser.url().contains("/login").then_some(())
    });
    browser.goto(&ui.url("/"));
    browser.wait_for("signed out", || {
        browser.url().contains("/login").then_some(())
    });
}

fn alias_version(browser: &Browser, alias: &str) -> String {
    browser.text(&browser.find(&format!("tr[data-alias=\"{alias}\"] td.alias-version")))
}

fn cli_alias(project: &Project, alias: &str) -> u64 {
    let (exit, version) = project.json(&["models", "show", &format!("tiny@{alias}"), "--json"]);
    assert_eq!(exit, 0, "{version}");
    version["version"].as_u64().unwrap_or(0)
}

fn click_text(browser: &Browser, css: &str, text: &str) -> Element {
    let found = browser.wait_for(&format!("`{css}` reading `{text}`"), || {
        browser
            .find_all(css)
            .into_iter()
            .find(|e| browser.text(e).contains(text))
    });
    browser.click(&found);
    found
}

#[test]
fn models_are_promoted_rolled_back_traced_compared_and_monitored() {
    let project = Project::new();
    project.write("dags/tiny_model.yaml", TINY_MODEL);
    project.write("dags/tiny_monitoring.yaml", TINY_MONITORING);
    let raw = project.write("data/raw.csv", &tiny_table(0.0));
    project.write("data/batch.csv", &tiny_table(25.0));
    let raw_digest = blake3::hash(&std::fs::read(raw).expect("read raw"))
        .to_hex()
        .to_string();
    for seed in ["1", "2"] {
        let run = project.dag(&["run", "tiny_model", "--param", &format!("seed={seed}")]);
        assert_eq!(
            run.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    assert_eq!(cli_alias(&project, "production"), 2);
    let ui = Ui::start(&project, None);
    let browser = Browser::start();

    // Drift, found by a run started from the browser, retrains (v3).
    browser.goto(&ui.url("/dags/tiny_monitoring/run"));
    browser.click(&browser.find("#run-form button[type=submit]"));
    wait_node(&browser, "retrain", "succeeded");
    browser.goto(&ui.url("/monitoring"));
    let caused = browser.find("a.caused");
    assert!(browser.text(&caused).contains("tiny_model"));
    assert!(!browser.find_all("svg rect.bar-js.over").is_empty());
    browser.screenshot("monitoring");
    browser.click(&caused);
    wait_node(&browser, "promote", "succeeded");
    let facts = browser.query_text("#facts").unwrap_or_default();
    assert!(
        facts.contains("dag") && facts.contains("drift in"),
        "{facts}"
    );
    browser.wait_for("v3 in production", || {
        (cli_alias(&project, "production") == 3).then_some(())
    });

    // Promote v1 to production, with a confirmation, then roll back.
    browser.goto(&ui.url("/models/tiny"));
    assert_eq!(alias_version(&browser, "production"), "v3");
    assert_eq!(browser.find_all("tr[data-version]").len(), 3);
    let gate = browser.text(&browser.find("tr[data-version=\"3\"]"));
    assert!(gate.contains("passed"), "{gate}");
    browser.script("document.querySelector('tr[data-version=\"1\"] select').value = 'production'; return true;");
    click_text(&browser, "tr[data-version=\"1\"] button", "Promote v1");
    browser.wait_for("the confirmation", || {
        browser.url().contains("/promote?").then_some(())
    });
    let question = browser.text(&browser.find("main .lead"));
    assert!(question.contains("from v3 to v1"), "{question}");
    assert_eq!(
        cli_alias(&project, "production"),
        3,
        "moved before confirming"
    );
    browser.screenshot("promote-confirm");
    browser.click(&browser.find("#confirm"));
    browser.find("#moved");
    assert_eq!(alias_version(&browser, "production"), "v1");
    assert_eq!(cli_alias(&project, "production"), 1);
    click_text(
        &browser,
        "tr[data-alias=\"production\"] a",
        "Roll back to v3",
    );
    browser.click(&browser.find("#confirm"));
    browser.find("#moved");
    assert_eq!(alias_version(&browser, "production"), "v3");
    assert_eq!(cli_alias(&project, "production"), 3);
    let history = browser.text(&browser.find("#alias-moves"));
    assert!(
        history.contains("rollback") && history.contains("v3 → v1"),
        "{history}"
    );
    browser.screenshot("model");

    // Lineage of the production version, back to the raw file's digest.
    browser.click(&browser.find("tr[data-alias=\"production\"] td.alias-version a"));
    let raw = browser.text(&browser.find("ul.raw-data"));
    assert!(
        raw.contains("data/raw.csv") && raw.contains(&raw_digest),
        "{raw}"
    );
    assert!(browser.find_all("svg.lineage .lineage-model").len() == 1);
    assert!(browser.find_all("svg.lineage .lineage-task").len() >= 3);
    browser.screenshot("lineage");

    // Experiments: the three training runs side by side.
    browser.goto(&ui.url("/experiments/tiny_model"));
    let table = browser.text(&browser.find("#comparison"));
    assert!(table.contains("param seed"), "{table}");
    assert_eq!(browser.find_all("#comparison thead th a").len(), 3);
    assert!(!browser.find_all("svg circle.dot").is_empty());
    browser.screenshot("experiments");
}

#[test]
fn a_ten_thousand_task_dag_page_stays_small_by_collapsing_levels() {
    let project = Project::new();
    let mut text = String::from("name: wide\ndescription: 100 levels of 100 tasks\ntasks:\n");
    for level in 0..100 {
        for i in 0..100 {
            text.push_str(&format!("  t{level:03}_{i:03}:\n    operator: noop\n"));
            if level > 0 {
                text.push_str(&format!("    needs: [t{:03}_{i:03}]\n", level - 1));
            }
        }
    }
    project.write("dags/wide.yaml", &text);
    let ui = Ui::start(&project, None);
    let browser = Browser::start();
    browser.goto(&ui.url("/dags/wide"));
    browser.find("main h1");
    assert_eq!(browser.find_all("details.level").len(), 100);
    assert!(
        browser.find_all("svg [data-task]").is_empty(),
        "10,000 tasks drawn"
    );
    let elements = browser.script("return document.getElementsByTagName('*').length;");
    assert!(
        elements.as_u64().is_some_and(|n| n < 3_000),
        "{elements} elements on the page"
    );
    click_text(&browser, "details.level summary", "Level 42 ");
    click_text(&browser, "details.level a", "of level 42");
    browser.wait_for("level 42 listed", || {
        (browser.find_all("details.level[open] .chip").len() == 100).then_some(())
    });
    assert!(browser.url().ends_with("/dags/wide?level=42#graph"));
}
