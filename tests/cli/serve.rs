//! `dag serve`: the real binary on a free loopback port, against a registry
//! filled by running the shipped lifecycle once (small forests, two versions).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::repo_root;

use super::serve_support::*;

#[test]
fn health_ready_model_and_metrics_describe_the_served_model() {
    let project = project_with_models();
    let server = serve(&project, &[], None);
    assert_eq!(get(&server.addr, "/health").status, 200);
    let ready = get(&server.addr, "/ready");
    assert_eq!(
        (ready.status, ready.json()["model"]["version"].clone()),
        (200, json!(1))
    );
    let model = get(&server.addr, "/model").json();
    assert_eq!(model["name"], "obesity");
    assert_eq!(model["version"], 1);
    assert!(
        model["aliases"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("production")))
    );
    assert!(model["metrics"]["accuracy"].as_f64().is_some(), "{model:#}");
    assert!(model["run_id"].is_string(), "{model:#}");
    assert!(
        model["data_digests"]
            .as_object()
            .is_some_and(|d| !d.is_empty()),
        "{model:#}"
    );
    assert_eq!(model["schema"].as_array().map(Vec::len), Some(16));
    assert_eq!(model["challenger"], Value::Null);
    post(&server.addr, "/predict", &record());
    let metrics = get(&server.addr, "/metrics");
    assert_eq!(metrics.status, 200);
    for line in [
        "dag_serve_requests_total{route=\"/predict\",status=\"200\"} 1",
        "dag_serve_model_version{role=\"champion\"} 1",
        "dag_serve_model_swaps_total{role=\"champion\"} 1",
        "dag_serve_model_swap_failures_total{role=\"champion\"} 0",
        "dag_serve_request_duration_seconds_count{route=\"/predict\"} 1",
    ] {
        assert!(
            metrics.body.contains(line),
            "missing `{line}` in\n{}",
            metrics.body
        );
    }
    assert!(
        metrics
            .body
            .contains("dag_serve_predictions_total{role=\"champion\",version=\"1\",class=")
    );
}

#[test]
fn predict_answers_class_probabilities_confidence_risk_and_model() {
    let project = project_with_models();
    let server = serve(&project, &[], None);
    let reply = post(&server.addr, "/predict", &record());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    let probabilities = answer["probabilities"].as_object().expect("probabilities");
    assert_eq!(probabilities.len(), 7, "{answer:#}");
    let sum: f64 = probabilities.values().filter_map(Value::as_f64).sum();
    assert!((sum - 1.0).abs() < 1e-9, "{answer:#}");
    let class = answer["class"].as_str().expect("class");
    let top = probabilities
        .values()
        .filter_map(Value::as_f64)
        .fold(0.0, f64::max);
    assert_eq!(answer["confidence"].as_f64(), Some(top));
    assert_eq!(probabilities[class].as_f64(), Some(top));
    let expected_risk = match class {
        "Normal_Weight" => "low",
        c if c.starts_with("Obesity") => "high",
        _ => "medium",
    };
    assert_eq!(answer["risk"], expected_risk, "{answer:#}");
    assert_eq!(answer["model"], json!({"name": "obesity", "version": 1}));

    let batch = post(
        &server.addr,
        "/predict/batch",
        &json!([record(), with("Weight", json!(120)), record()]),
    );
    assert_eq!(batch.status, 200, "{}", batch.body);
    let batch = batch.json();
    assert_eq!(batch["predictions"].as_array().map(Vec::len), Some(3));
    assert_eq!(batch["predictions"][0]["class"], answer["class"]);
    assert_eq!(batch["model"]["version"], 1);
}

#[test]
fn bad_requests_are_refused_with_400_413_or_422_naming_the_field() {
    let project = project_with_models();
    let server = serve(&project, &[], None);
    let addr = server.addr.as_str();
    let mut missing = record();
    missing.as_object_mut().map(|r| r.remove("Age"));
    for (body, field, words) in [
        (missing, "Age", "is missing"),
        (with("Height", json!("tall")), "Height", "expected a number"),
        (with("Age", json!(500)), "Age", "outside the training range"),
        (
            with("MTRANS", json!("Rocket")),
            "MTRANS",
            "unknown category `Rocket`",
        ),
        (with("Gender", json!(null)), "Gender", "expected one of"),
    ] {
        let reply = post(addr, "/predict", &body);
        assert_eq!(reply.status, 422, "{}", reply.body);
        let error = reply.json();
        assert_eq!(error["field"], field, "{error}");
        assert!(
            error["error"].as_str().is_some_and(|e| e.contains(words)),
            "{error}"
        );
    }
    let batch = post(
        addr,
        "/predict/batch",
        &json!([record(), with("FAF", json!(-3))]),
    );
    assert_eq!(batch.status, 422);
    assert_eq!(
        (batch.json()["field"].clone(), batch.json()["index"].clone()),
        (json!("FAF"), json!(1))
    );

    for body in [&b"{\"Age\": "[..], b"not json", b"", b"\xff\xfe"] {
        let reply = request(addr, "POST", "/predict", body, &[]);
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(reply.json()["error"].is_string());
    }
    assert_eq!(post(addr, "/predict", &json!([record()])).status, 400);
    assert_eq!(post(addr, "/predict/batch", &record()).status, 400);

    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(2 << 20));
    assert_eq!(
        request(addr, "POST", "/predict", huge.as_bytes(), &[]).status,
        413
    );
    let too_many = Value::Array(vec![record(); 10_001]);
    assert_eq!(post(addr, "/predict/batch", &too_many).status, 413);
    assert_eq!(get(addr, "/nope").status, 404);
    assert_eq!(get(addr, "/health").status, 200, "the server survived");
}

#[test]
fn token_is_required_on_every_request_once_set() {
    let project = project_with_models();
    let server = serve(&project, &[], Some("s3cret-token-0123456789"));
    let addr = server.addr.as_str();
    assert_eq!(get(addr, "/health").status, 401);
    assert_eq!(
        request(addr, "GET", "/ready", b"", &["Authorization: Bearer wrong"]).status,
        401
    );
    let body = record().to_string();
    assert_eq!(
        request(addr, "POST", "/predict", body.as_bytes(), &[]).status,
        401
    );
    let ok = request(
        addr,
        "POST",
        "/predict",
        body.as_bytes(),
        &["Authorization: Bearer s3cret-token-0123456789"],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[test]
fn non_loopback_address_without_token_is_refused_with_exit_2() {
    let project = project_with_models();
    let output = project
        .command(&["serve", "--addr", "0.0.0.0:0"])
        .env_remove("DAG_API_TOKEN")
        .output()
        .expect("run dag serve");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DAG_API_TOKEN"), "{stderr}");
}

#[test]
fn promotion_and_rollback_under_load_fail_no_request() {
    let project = project_with_models();
    let server = serve(&project, &[], None);
    let addr = server.addr.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::<(u16, Value)>::new()));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, stop, seen) = (addr.clone(), Arc::clone(&stop), Arc::clone(&seen));
            std::thread::spawn(move || {
                let body = record().to_string();
                while !stop.load(Ordering::Relaxed) {
                    let reply = request(&addr, "POST", "/predict", body.as_bytes(), &[]);
                    let version = serde_json::from_str::<Value>(&reply.body)
                        .map(|v| v["model"]["version"].clone())
                        .unwrap_or(Value::Null);
                    if let Ok(mut seen) = seen.lock() {
                        seen.push((reply.status, version));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let promote = project.dag(&["models", "promote", "obesity", "2"]);
    assert!(promote.status.success(), "{promote:?}");
    wait_for("version 2", || served_version(&addr) == json!(2));
    std::thread::sleep(Duration::from_millis(300));
    let rollback = project.dag(&["models", "rollback", "obesity"]);
    assert!(rollback.status.success(), "{rollback:?}");
    wait_for("version 1 again", || served_version(&addr) == json!(1));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client thread");
    }
    let seen = seen.lock().expect("results");
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        seen.len()
    );
    let versions: Vec<&Value> = seen.iter().map(|(_, v)| v).collect();
    let first_two = versions
        .iter()
        .position(|v| **v == json!(2))
        .expect("v2 answered");
    let back_to_one = versions[first_two..].iter().any(|v| **v == json!(1));
    assert!(back_to_one, "v1 answered after the rollback");
    assert_eq!(
        metric(&addr, "dag_serve_model_swaps_total{role=\"champion\"}"),
        Some(3.0)
    );
}

#[test]
fn corrupted_model_blob_is_never_swapped_in() {
    let project = project_with_models();
    let models = project.path().join(".dag/models");
    let v2: Value = serde_json::from_slice(
        &std::fs::read(models.join("obesity/versions/2.json")).expect("read version 2"),
    )
    .expect("version JSON");
    let blob = models
        .join("blobs")
        .join(v2["digest"].as_str().expect("digest"));
    let mut bytes = std::fs::read(&blob).expect("read blob");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&blob, &bytes).expect("corrupt blob");
    let server = serve(&project, &[], None);
    let addr = server.addr.as_str();
    let promote = project.dag(&["models", "promote", "obesity", "2"]);
    assert!(promote.status.success(), "{promote:?}");
    let failures = "dag_serve_model_swap_failures_total{role=\"champion\"}";
    wait_for("the swap failure", || metric(addr, failures) == Some(1.0));
    assert_eq!(served_version(addr), json!(1));
    assert_eq!(get(addr, "/ready").status, 200);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        metric(addr, failures),
        Some(1.0),
        "counted once, not per poll"
    );
}

#[test]
fn challenger_takes_its_share_or_only_shadows() {
    let project = project_with_models();
    let all = serve(
        &project,
        &[
            "--challenger-alias",
            "challenger",
            "--challenger-share",
            "1",
        ],
        None,
    );
    assert_eq!(served_version(&all.addr), json!(2));
    assert_eq!(
        get(&all.addr, "/model").json()["challenger"]["model"]["version"],
        2
    );
    drop(all);

    // A share below 1: requests are routed by a hash of their body, so 400
    // different records split close to 30/70. The bound fails on 0% and on
    // 100% (and on anything off by more than ~5 standard deviations).
    let split = serve(
        &project,
        &[
            "--challenger-alias",
            "challenger",
            "--challenger-share",
            "0.3",
        ],
        None,
    );
    let by_challenger = (0..400)
        .filter(|i| {
            let record = with("Age", json!(18 + i % 40));
            let record = {
                let mut record = record;
                record["Height"] = json!(1.5 + f64::from(*i) / 1000.0);
                record
            };
            post(&split.addr, "/predict", &record).json()["model"]["version"] == 2
        })
        .count();
    assert!(
        (80..=160).contains(&by_challenger),
        "{by_challenger} of 400 requests went to the challenger at a share of 0.3"
    );
    drop(split);

    let shadow = serve(
        &project,
        &["--challenger-alias", "challenger", "--shadow"],
        None,
    );
    let addr = shadow.addr.as_str();
    for _ in 0..3 {
        assert_eq!(served_version(addr), json!(1));
    }
    assert_eq!(
        metric(addr, "dag_serve_shadow_comparisons_total"),
        Some(3.0)
    );
    let agreed = metric(addr, "dag_serve_shadow_agreements_total").expect("agreements");
    let ratio = metric(addr, "dag_serve_challenger_agreement_ratio").expect("ratio");
    assert!((ratio - agreed / 3.0).abs() < 1e-9);
    assert_eq!(
        metric(
            addr,
            "dag_serve_model_requests_total{role=\"challenger\",version=\"2\"}"
        ),
        Some(3.0)
    );
}

#[test]
fn predictions_are_logged_as_csv_with_the_raw_columns() {
    let project = project_with_models();
    let server = serve(&project, &["--log-sample", "0.5"], None);
    for _ in 0..4 {
        assert_eq!(post(&server.addr, "/predict", &record()).status, 200);
    }
    let log: PathBuf = project.path().join(".dag/predictions/current.csv");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("two logged rows", || read().lines().count() == 3);
    let text = read();
    let raw = std::fs::read_to_string(repo_root().join("data/raw/ObesityDataSet.csv"))
        .expect("read the data set");
    let raw_header = raw.lines().next().expect("header");
    let expected = raw_header.replace(",NObeyesdad", "") + ",predicted,model_version,status,reason";
    assert_eq!(text.lines().next(), Some(expected.as_str()));
    let row = text.lines().nth(1).expect("a row");
    assert!(
        row.starts_with(
            "Female,21,1.62,64,yes,no,2,3,Sometimes,no,2,no,0,1,no,Public_Transportation,"
        ),
        "{row}"
    );
    assert!(row.ends_with(",1,answered,"), "{row}");
}

#[test]
fn refused_records_are_logged_with_their_reason_and_flagging_answers_them() {
    let project = project_with_models();
    let log: PathBuf = project.path().join(".dag/predictions/current.csv");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let odd = with("Weight", json!(300));
    let odd = {
        let mut odd = odd;
        odd["MTRANS"] = json!("Scooter");
        odd
    };
    {
        let server = serve(&project, &["--log-sample", "1"], None);
        let reply = post(&server.addr, "/predict", &odd);
        assert_eq!(reply.status, 422, "{}", reply.body);
        let batch = post(
            &server.addr,
            "/predict/batch",
            &json!([record(), with("Age", json!("old")), odd.clone()]),
        );
        assert_eq!(batch.status, 422, "{}", batch.body);
        wait_for("three rejected rows", || read().lines().count() == 4);
    }
    let text = read();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    // The values as sent; a mistyped one is left empty, so the column keeps its type.
    assert!(rows[0].starts_with("Female,21,1.62,300,"), "{}", rows[0]);
    assert!(rows[0].contains(",Scooter,,1,rejected,"), "{}", rows[0]);
    assert!(rows[1].starts_with("Female,,1.62,64,"), "{}", rows[1]);
    assert!(
        rows[1].contains(",rejected,") && rows[1].contains("`Age`"),
        "{}",
        rows[1]
    );
    assert!(rows[2].contains(",Scooter,,1,rejected,"), "{}", rows[2]);

    let server = serve(
        &project,
        &["--log-sample", "1", "--invalid-records", "flag"],
        None,
    );
    let reply = post(&server.addr, "/predict", &odd);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer: Value = serde_json::from_str(&reply.body).expect("JSON answer");
    let flagged = answer["flagged"].as_str().unwrap_or_default();
    assert!(flagged.contains("`Weight`"), "{answer}");
    assert!(answer["class"].is_string(), "{answer}");
    let batch = post(&server.addr, "/predict/batch", &json!([record(), odd]));
    assert_eq!(batch.status, 200, "{}", batch.body);
    let answers: Value = serde_json::from_str(&batch.body).expect("JSON answer");
    assert!(
        answers["predictions"][0].get("flagged").is_none(),
        "{answers}"
    );
    assert!(
        answers["predictions"][1]["flagged"].is_string(),
        "{answers}"
    );
    wait_for("three more rows", || read().lines().count() == 7);
    let text = read();
    let statuses: Vec<&str> = text
        .lines()
        .skip(4)
        .map(|row| {
            if row.contains(",flagged,") {
                "flagged"
            } else {
                "answered"
            }
        })
        .collect();
    assert_eq!(statuses, ["flagged", "answered", "flagged"], "{text}");
    assert!(
        text.lines()
            .nth(4)
            .is_some_and(|row| row.contains(",300,") && row.contains(",Scooter,"))
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let project = project_with_models();
    let mut server = serve(&project, &[], None);
    assert_eq!(get(&server.addr, "/health").status, 200);
    let pid = i32::try_from(server.child.id()).expect("pid fits");
    // SAFETY: sending a signal to the child this test started.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let status = server.child.wait().expect("wait for dag serve");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_daemon_serves_predictions_follows_promotions_and_drains_on_sigterm() {
    let project = project_with_models();
    std::fs::create_dir_all(project.path().join("dags")).expect("dags dir");
    let mut child = project
        .command(&[
            "daemon",
            "--addr",
            "127.0.0.1:0",
            "--serve",
            "127.0.0.1:0",
            "--poll-ms",
            "50",
            "--log-sample",
            "0",
        ])
        .env_remove("DAG_API_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon");
    let pid = child.id();
    let info = project.path().join(".dag/daemon.json");
    let mut serve_addr = String::new();
    wait_for("daemon.json with the prediction server's address", || {
        let value: Option<Value> = std::fs::read_to_string(&info)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        match value {
            Some(v) if v["pid"].as_u64() == Some(u64::from(pid)) => {
                serve_addr = v["serve_addr"].as_str().unwrap_or_default().to_string();
                !serve_addr.is_empty()
            }
            _ => false,
        }
    });
    assert_eq!(get(&serve_addr, "/ready").status, 200);
    assert_eq!(served_version(&serve_addr), json!(1));

    let (code, status) = project.json(&["daemon", "status", "--json"]);
    assert_eq!(code, 0, "{status}");
    assert_eq!(status["serving"]["addr"], json!(serve_addr));
    assert_eq!(status["serving"]["model"], json!("obesity"));
    assert_eq!(status["serving"]["alias"], json!("production"));
    assert_eq!(status["serving"]["ready"], json!(true));
    assert_eq!(status["serving"]["version"], json!(1));
    let text = project.dag(&["daemon", "status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!(
            "serving obesity@production at http://{serve_addr} (version 1)"
        )),
        "{text}"
    );

    let promote = project.dag(&["models", "promote", "obesity", "2"]);
    assert!(promote.status.success(), "{promote:?}");
    wait_for("the daemon's server to swap in version 2", || {
        served_version(&serve_addr) == json!(2)
    });
    let (_, status) = project.json(&["daemon", "status", "--json"]);
    assert_eq!(status["serving"]["version"], json!(2));

    // SAFETY: sending a signal to the child this test started.
    unsafe {
        libc::kill(i32::try_from(pid).expect("pid fits"), libc::SIGTERM);
    }
    let exit = child.wait().expect("wait for the daemon");
    assert_eq!(exit.code(), Some(0));
    assert!(
        TcpStream::connect(&serve_addr).is_err(),
        "the prediction server still listens after the daemon stopped"
    );
    assert!(!info.exists(), "daemon.json is removed on a clean stop");
}

#[test]
fn the_daemon_refuses_to_serve_off_loopback_without_a_token() {
    let project = project_with_models();
    let output = project
        .command(&["daemon", "--addr", "127.0.0.1:0", "--serve", "0.0.0.0:0"])
        .env_remove("DAG_API_TOKEN")
        .output()
        .expect("run dag daemon");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DAG_API_TOKEN"), "{stderr}");
    assert!(!project.path().join(".dag/daemon.json").exists());
}

#[test]
fn the_prediction_log_is_what_the_monitoring_dag_checks_for_drift() {
    let project = project_with_models();
    copy_dir(&repo_root().join("dags"), &project.path().join("dags"));
    let mut server = serve(&project, &["--log-sample", "1"], None);
    // The same record again and again: nothing like the training data; and
    // records the server refuses, which monitoring must count all the same.
    for _ in 0..120 {
        assert_eq!(post(&server.addr, "/predict", &record()).status, 200);
    }
    for _ in 0..30 {
        let reply = post(&server.addr, "/predict", &with("Weight", json!(300)));
        assert_eq!(reply.status, 422);
    }
    // SAFETY: sending a signal to the child this test started.
    unsafe {
        libc::kill(
            i32::try_from(server.child.id()).expect("pid fits"),
            libc::SIGTERM,
        );
    }
    assert_eq!(server.child.wait().expect("wait").code(), Some(0));

    let (code, run) = project.json(&[
        "run",
        "obesity_monitoring",
        "--param",
        "current=.dag/predictions/current.csv",
        "--only",
        "detect_drift",
        "--json",
    ]);
    assert_eq!(code, 0, "{run}");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(project.path().join("data/reports/drift.json"))
            .expect("the drift report"),
    )
    .expect("the drift report is JSON");
    assert_eq!(report["current_rows"], json!(150), "{report}");
    assert_eq!(report["drift_detected"], json!(true), "{report}");
    // The reference is the training data of the version `production` points at.
    let (_, production) = project.json(&["models", "show", "obesity@production", "--json"]);
    assert_eq!(
        report["reference"]["version"], production["version"],
        "{report}"
    );
    assert_eq!(
        report["reference"]["digest"], production["data_digests"]["train"],
        "{report}"
    );
    assert_eq!(
        report["traffic"]["counts"],
        json!({"answered": 120, "rejected": 30})
    );
    assert_eq!(
        report["quality"]["out_of_range"]["Weight"],
        json!(0.2),
        "{report}"
    );
    assert_eq!(
        report["quality"]["extra_columns"],
        json!(["predicted", "model_version", "status", "reason"]),
        "{report}"
    );
    assert_eq!(report["quality"]["missing_columns"], json!(["NObeyesdad"]));
}
