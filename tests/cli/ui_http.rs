//! The web UI over plain HTTP: what it refuses (cross-site posts, posts
//! without the CSRF token, foreign host names, short tokens, signed-out
//! browsers), the sign-in cookie, the run form's errors matching
//! `--param`'s, and `dag ui` next to a running daemon.

use super::support::Project;
use super::ui_support::{GREETING, Ui, csrf_of, http};

#[test]
fn state_changing_requests_need_the_csrf_token_a_same_site_origin_and_a_local_host() {
    let project = Project::new();
    project.write("dags/greeting.yaml", GREETING);
    let ui = Ui::start(&project, None);
    let form = http(&ui.addr, "GET", "/dags/greeting/run", &[], "");
    assert_eq!(form.status, 200, "{}", form.body);
    let token = csrf_of(&form.body);
    assert_eq!(token.len(), 32, "{}", form.body);
    for header in [
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
    ] {
        assert!(
            form.header(header).is_some(),
            "{header} missing: {}",
            form.head
        );
    }
    assert!(
        form.header("content-security-policy")
            .is_some_and(|csp| csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"))
    );

    let body = "param.word=x&param.times=1";
    let without = http(&ui.addr, "POST", "/dags/greeting/run", &[], body);
    assert_eq!(without.status, 403, "{}", without.body);
    let forged = http(
        &ui.addr,
        "POST",
        "/dags/greeting/run",
        &[],
        &format!("csrf={}&{body}", "0".repeat(32)),
    );
    assert_eq!(forged.status, 403);
    let cross_site = http(
        &ui.addr,
        "POST",
        "/dags/greeting/run",
        &["Origin: http://evil.example"],
        &format!("csrf={token}&{body}"),
    );
    assert_eq!(cross_site.status, 403);
    let rebound = http(&ui.addr, "GET", "/", &["Host: evil.example:7311"], "");
    assert_eq!(
        rebound.status, 403,
        "a foreign Host is a DNS-rebinding page"
    );
    assert!(
        !project.path().join(".dag/logs").exists(),
        "a refused request started a run"
    );
    let cancel_unknown = http(
        &ui.addr,
        "POST",
        "/runs/no-such-run/cancel",
        &[],
        &format!("csrf={token}"),
    );
    assert_eq!(cancel_unknown.status, 404);

    // The same request with the token and a same-site origin starts a run.
    let accepted = http(
        &ui.addr,
        "POST",
        "/dags/greeting/run",
        &[&format!("Origin: http://{}", ui.addr)],
        &format!("csrf={token}&param.word=accepted&param.times=1"),
    );
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    let location = accepted.header("location").unwrap_or_default().to_string();
    assert!(location.starts_with("/runs/"), "{location}");
    std::fs::write(project.path().join("release-accepted"), "").expect("release the task");
}

#[test]
fn the_run_form_fails_with_the_messages_of_param() {
    let project = Project::new();
    project.write("dags/greeting.yaml", GREETING);
    let ui = Ui::start(&project, None);
    let token = csrf_of(&http(&ui.addr, "GET", "/dags/greeting/run", &[], "").body);
    for (field, cli_pair) in [
        ("param.times=abc", "times=abc"),
        ("param.bogus=1", "bogus=1"),
    ] {
        let refused = http(
            &ui.addr,
            "POST",
            "/dags/greeting/run",
            &[],
            &format!("csrf={token}&{field}"),
        );
        assert_eq!(refused.status, 422, "{}", refused.body);
        // `dag run` goes through the running UI's daemon, as it would
        // through `dag daemon`, and fails with the same message.
        let cli = project.dag(&["run", "greeting", "--param", cli_pair]);
        assert_eq!(cli.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&cli.stderr);
        let message = stderr
            .trim()
            .strip_prefix("error: ")
            .unwrap_or(stderr.trim())
            .to_string();
        assert!(!message.is_empty());
        let escaped = message.replace('"', "&quot;");
        assert!(
            refused.body.contains(&escaped),
            "the form's error differs from `--param {cli_pair}` ({message}):\n{}",
            refused.body
        );
    }
}

#[test]
fn a_token_means_signing_in_for_an_http_only_strict_cookie() {
    let project = Project::new();
    project.write("dags/greeting.yaml", GREETING);
    let short = project
        .command(&["ui", "--addr", "127.0.0.1:0"])
        .env("DAG_API_TOKEN", "s3cret")
        .output()
        .expect("run dag ui");
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("fewer than 16"));

    let token = "a-token-long-enough-to-use";
    let ui = Ui::start(&project, Some(token));
    let signed_out = http(&ui.addr, "GET", "/dags/greeting", &[], "");
    assert_eq!(signed_out.status, 303);
    assert_eq!(
        signed_out.header("location"),
        Some("/login?next=%2Fdags%2Fgreeting")
    );
    // Off loopback is allowed with a token: the Host check is for tokenless use.
    let login = http(
        &ui.addr,
        "GET",
        "/login?next=%2Fdags%2Fgreeting",
        &["Host: dag.example"],
        "",
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let csrf = csrf_of(&login.body);
    let wrong = http(
        &ui.addr,
        "POST",
        "/login",
        &[],
        &format!("csrf={csrf}&next=%2Fdags%2Fgreeting&token=not-the-token-at-all"),
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let right = http(
        &ui.addr,
        "POST",
        "/login",
        &[],
        &format!("csrf={csrf}&next=%2F%2Fevil.example&token={token}"),
    );
    assert_eq!(right.status, 303, "{}", right.body);
    assert_eq!(right.header("location"), Some("/"), "an open redirect");
    let cookie = right.header("set-cookie").unwrap_or_default().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(token), "the cookie is the token: {cookie}");
    let session = cookie.split(';').next().unwrap_or_default().to_string();
    let page = http(
        &ui.addr,
        "GET",
        "/dags/greeting",
        &[&format!("Cookie: {session}")],
        "",
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign out"));
    let bearer = http(
        &ui.addr,
        "GET",
        "/",
        &[&format!("Authorization: Bearer {token}")],
        "",
    );
    assert_eq!(bearer.status, 200);
    // The API keeps its own rule: the bearer token, not the cookie.
    let api = http(
        &ui.addr,
        "GET",
        "/api/status",
        &[&format!("Cookie: {session}")],
        "",
    );
    assert_eq!(api.status, 401);
    drop(ui);
}

#[test]
fn dag_ui_points_at_a_daemon_that_already_serves_the_state_directory() {
    let project = Project::new();
    project.write("dags/greeting.yaml", GREETING);
    let ui = Ui::start(&project, None);
    let second = project.dag(&["ui", "--addr", "127.0.0.1:0"]);
    assert_eq!(second.status.code(), Some(0), "{}", ui.log());
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains(&format!("http://{}/", ui.addr)), "{stdout}");
    // The API's paths stay the API's; the rest is the UI's.
    let api_404 = http(&ui.addr, "GET", "/api/nope", &[], "");
    assert_eq!(api_404.status, 404);
    assert!(api_404.body.contains("no such endpoint"));
    let ui_404 = http(&ui.addr, "GET", "/nope", &[], "");
    assert_eq!(ui_404.status, 404);
    assert!(ui_404.body.contains("<h1>Not found</h1>"));
    let traversal = http(&ui.addr, "GET", "/models/..%2F..%2Fetc", &[], "");
    assert_eq!(traversal.status, 404);
}
