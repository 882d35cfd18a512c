//! The VBS simulator through its REST API, as a real VBS client sees it: paths,
//! status codes, bodies, error shapes and codes, job lifecycles on a stepped
//! clock, paging, policies, and the test hooks (recording, failures, outages).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use vbs_simulator::{ClockMode, DEFAULT_VOLUME_IDS, JobTiming, Simulator, SimulatorConfig, VolumeSpec};

const PROJECT: &str = "0a1b2c3d4e5f40718293a4b5c6d7e8f9";
const OTHER_PROJECT: &str = "99999999999940718293a4b5c6d7e8f9";
/// 10 GB, available.
const VOL_10: &str = DEFAULT_VOLUME_IDS[0];
/// 20 GB, available.
const VOL_20: &str = DEFAULT_VOLUME_IDS[1];
/// 40 GB, in-use.
const VOL_40: &str = DEFAULT_VOLUME_IDS[2];
/// 5 GB, available.
const VOL_5: &str = DEFAULT_VOLUME_IDS[3];
/// A well-formed id no volume has.
const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

// ---------------------------------------------------------------- harness

struct Vbs {
    sim: Simulator,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
    body: Value,
}

/// `base` with the keys of `fields` set over it (null values included).
fn merged(mut base: Value, fields: Value) -> Value {
    for (key, value) in fields.as_object().expect("object") {
        base[key] = value.clone();
    }
    base
}

async fn start() -> Vbs {
    start_with(SimulatorConfig::for_testing()).await
}

async fn start_with(config: SimulatorConfig) -> Vbs {
    // The crate's reqwest has no built-in TLS provider; plain HTTP still
    // needs one installed to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let sim = Simulator::start(config, listener).await.expect("simulator starts");
    Vbs {
        sim,
        http: reqwest::Client::new(),
    }
}

fn v2(rest: &str) -> String {
    format!("/v2/{PROJECT}{rest}")
}

fn job_path(job_id: &str) -> String {
    format!("/v1/{PROJECT}/jobs/{job_id}")
}

impl Vbs {
    async fn send_raw(&self, method: Method, path: &str, body: Option<String>) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.sim.url())
        };
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await.expect("simulator answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            body,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.send_raw(method, path, body.map(|b| b.to_string())).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None).await
    }

    fn step(&self, seconds: u64) {
        self.sim.advance(Duration::from_secs(seconds));
    }

    /// Starts a /cloudbackups create; returns (job id, backup id).
    async fn create_backup(&self, volume_id: &str, name: &str) -> (String, String) {
        let answer = self
            .post(
                &v2("/cloudbackups"),
                json!({"backup": {"volume_id": volume_id, "name": name}}),
            )
            .await;
        assert_eq!(answer.status, 200, "create: {}", answer.text);
        let job_id = text(&answer.body["job_id"]);
        let job = self.job(&job_id).await;
        (job_id, text(&job["entities"]["backup_id"]))
    }

    /// A backup that is done and available; returns its id.
    async fn available_backup(&self, volume_id: &str, name: &str) -> String {
        let (_, backup_id) = self.create_backup(volume_id, name).await;
        self.step(3);
        assert_eq!(self.backup(&backup_id).await["status"], "available");
        backup_id
    }

    async fn job(&self, job_id: &str) -> Value {
        let answer = self.get(&job_path(job_id)).await;
        assert_eq!(answer.status, 200, "job: {}", answer.text);
        answer.body
    }

    async fn backup(&self, backup_id: &str) -> Value {
        let answer = self.get(&v2(&format!("/backups/{backup_id}"))).await;
        assert_eq!(answer.status, 200, "backup: {}", answer.text);
        answer.body["backup"].clone()
    }

    fn volume_status(&self, volume_id: &str) -> String {
        self.sim
            .volumes()
            .into_iter()
            .find(|v| v.id == volume_id)
            .expect("known volume")
            .status
    }

    async fn create_policy(&self, name: &str) -> String {
        let answer = self.post(&v2("/backuppolicy"), policy_body(name)).await;
        assert_eq!(answer.status, 200, "policy: {}", answer.text);
        text(&answer.body["backup_policy_id"])
    }

    async fn associate(&self, policy_id: &str, volumes: &[&str]) -> Answer {
        let resources: Vec<Value> = volumes
            .iter()
            .map(|id| json!({"resource_id": id, "resource_type": "volume"}))
            .collect();
        self.post(
            &v2("/backuppolicyresources"),
            json!({"backup_policy_id": policy_id, "resources": resources}),
        )
        .await
    }

    async fn tasks(&self, policy_id: &str, query: &str) -> Answer {
        self.get(&v2(&format!("/backuppolicy/{policy_id}/backuptasks{query}")))
            .await
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}

fn policy_body(name: &str) -> Value {
    json!({
        "backup_policy_name": name,
        "scheduled_policy": {
            "remain_first_backup_of_curMonth": "Y",
            "rentention_num": 10,
            "frequency": 1,
            "start_time": "12:00",
            "status": "ON"
        }
    })
}

/// `{"error": {"code", "message"}}` with this status and code.
#[track_caller]
fn assert_vbs_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "body: {}", answer.text);
    assert_eq!(answer.body["error"]["code"], code, "body: {}", answer.text);
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "no message: {}", answer.text);
}

/// The native API's `{"badRequest": {"message", "code"}}`.
#[track_caller]
fn assert_bad_request(answer: &Answer, code: Value) {
    assert_eq!(answer.status, 400, "body: {}", answer.text);
    assert_eq!(answer.body["badRequest"]["code"], code, "body: {}", answer.text);
    assert!(
        answer.body["badRequest"]["message"].is_string(),
        "body: {}",
        answer.text
    );
}

/// The native API's `{"itemNotFound": {"message", "code": 404}}`.
#[track_caller]
fn assert_item_not_found(answer: &Answer, message: &str) {
    assert_eq!(answer.status, 404, "body: {}", answer.text);
    assert_eq!(answer.body, json!({"itemNotFound": {"message": message, "code": 404}}));
}

/// `YYYY-MM-DDTHH:MM:SS` plus `digits` fraction digits and maybe a `Z`.
#[track_caller]
fn assert_time(value: &Value, digits: usize, zulu: bool) {
    let text = value.as_str().unwrap_or_else(|| panic!("not a time: {value}"));
    let (stamp, zone) = match text.strip_suffix('Z') {
        Some(stamp) => (stamp, true),
        None => (text, false),
    };
    assert_eq!(zone, zulu, "zone of {text}");
    assert_eq!(stamp.len(), 20 + digits, "fraction of {text}");
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f").unwrap_or_else(|e| panic!("{text}: {e}"));
}

fn is_job_id(text: &str) -> bool {
    text.len() == 32 && text.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

fn is_uuid(text: &str) -> bool {
    vbs_rules::uuid(text).is_ok()
}

// ------------------------------------------------------- backup lifecycles

#[tokio::test]
async fn create_walks_init_running_success_and_the_backup_becomes_available() {
    let vbs = start().await;
    let answer = vbs
        .post(
            &v2("/cloudbackups"),
            json!({"backup": {
                "volume_id": VOL_10,
                "snapshot_id": null,
                "name": "nightly-1",
                "description": "nightly",
                "tags": [{"key": "env", "value": "test"}],
                "extend_param": {"FullBackup": "false"}
            }}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let job_id = text(&answer.body["job_id"]);
    assert!(is_job_id(&job_id), "{job_id}");
    assert_eq!(answer.body.as_object().map(|o| o.len()), Some(1));

    let job = vbs.job(&job_id).await;
    assert_eq!(job["status"], "INIT");
    assert_eq!(job["job_id"], job_id.as_str());
    assert_eq!(job["job_type"], "bksCreateBackup");
    assert_time(&job["begin_time"], 3, true);
    assert_eq!(job["end_time"], Value::Null);
    assert_eq!(job["error_code"], Value::Null);
    assert_eq!(job["fail_reason"], Value::Null);
    let entities = &job["entities"];
    assert_eq!(entities["volume_id"], VOL_10);
    assert_eq!(entities["bks_create_volume_name"], "nightly-1");
    assert!(is_uuid(&text(&entities["snapshot_id"])));
    let backup_id = text(&entities["backup_id"]);
    assert!(is_uuid(&backup_id));
    assert!(entities.as_object().is_some_and(|m| m.values().all(Value::is_string)));

    let creating = vbs.backup(&backup_id).await;
    assert_eq!(creating["status"], "creating");

    vbs.step(1);
    assert_eq!(vbs.job(&job_id).await["status"], "RUNNING");
    assert_eq!(vbs.backup(&backup_id).await["status"], "creating");

    vbs.step(2);
    let job = vbs.job(&job_id).await;
    assert_eq!(job["status"], "SUCCESS");
    assert_time(&job["end_time"], 3, true);

    let backup = vbs.backup(&backup_id).await;
    assert_eq!(backup["status"], "available");
    assert_eq!(backup["id"], backup_id.as_str());
    assert_eq!(backup["name"], "nightly-1");
    assert_eq!(backup["description"], r#"{"DESC": "nightly", "INC": 0}"#);
    assert_eq!(backup["volume_id"], VOL_10);
    assert_eq!(backup["size"], 10);
    assert_eq!(backup["availability_zone"], "eu-de-01");
    assert_eq!(backup["fail_reason"], Value::Null);
    assert_eq!(backup["os-bak-tenant-attr:tenant_id"], PROJECT);
    assert_eq!(backup["is_incremental"], false);
    assert_eq!(backup["has_dependent_backups"], false);
    assert_eq!(backup["object_count"], 0);
    assert_eq!(backup["snapshot_id"], entities["snapshot_id"]);
    assert!(backup["container"].is_string());
    for key in ["created_at", "updated_at", "data_timestamp"] {
        assert_time(&backup[key], 6, false);
    }
    let metadata = text(&backup["service_metadata"]);
    assert!(metadata.starts_with(" {") && metadata.ends_with("} "), "{metadata}");
    let metadata: Value = serde_json::from_str(metadata.trim()).expect("metadata is JSON text");
    assert_eq!(metadata["Type"], 0);
    assert_eq!(metadata["progress"], "100");
    assert_eq!(metadata["bootable"], false);
    let links = backup["links"].as_array().expect("links");
    assert_eq!(links.len(), 2);
    assert_eq!(
        links[0],
        json!({"rel": "self", "href": format!("{}/v2/{PROJECT}/backups/{backup_id}", vbs.sim.url())})
    );
    assert_eq!(
        links[1],
        json!({"rel": "bookmark", "href": format!("{}/{PROJECT}/backups/{backup_id}", vbs.sim.url())})
    );
}

#[tokio::test]
async fn later_backups_are_incremental_unless_a_full_backup_is_asked() {
    let vbs = start().await;
    let first = vbs.available_backup(VOL_10, "first").await;
    let second = vbs.available_backup(VOL_10, "second").await;
    let answer = vbs
        .post(
            &v2("/cloudbackups"),
            json!({"backup": {"volume_id": VOL_10, "name": "full", "extend_param": {"FullBackup": "true"}}}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let third = text(&vbs.job(&text(&answer.body["job_id"])).await["entities"]["backup_id"]);

    let second = vbs.backup(&second).await;
    assert_eq!(second["is_incremental"], true);
    assert_eq!(second["description"], r#"{"DESC": "", "INC": 1}"#);
    let metadata: Value = serde_json::from_str(text(&second["service_metadata"]).trim()).expect("JSON");
    assert_eq!(metadata["Type"], 1);
    assert_eq!(vbs.backup(&first).await["has_dependent_backups"], true);
    let third = vbs.backup(&third).await;
    assert_eq!(third["is_incremental"], false);
    assert_eq!(third["description"], r#"{"DESC": "", "INC": 0}"#);
}

/// `count` distinct, valid tags.
fn tags(count: usize) -> Value {
    (0..count)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect()
}

#[tokio::test]
async fn ten_tags_are_accepted() {
    let vbs = start().await;
    let body = json!({"backup": {"volume_id": VOL_10, "name": "tagged", "tags": tags(10)}});
    let answer = vbs.post(&v2("/cloudbackups"), body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn create_checks_every_field() {
    let vbs = start().await;
    let backup = |fields: Value| json!({ "backup": merged(json!({"volume_id": VOL_10, "name": "ok"}), fields) });
    let cases = [
        (backup(json!({"name": null})), 400, "VolumeBackup.0007"),
        (backup(json!({"name": ""})), 400, "VolumeBackup.0007"),
        (backup(json!({"name": "a".repeat(65)})), 400, "VolumeBackup.0003"),
        (backup(json!({"name": "with space"})), 400, "VolumeBackup.0004"),
        (backup(json!({"name": "autobackup"})), 400, "VolumeBackup.0005"),
        (backup(json!({"description": "a<b"})), 400, "VolumeBackup.0006"),
        (backup(json!({"description": "d".repeat(65)})), 400, "VolumeBackup.0006"),
        (backup(json!({"volume_id": null})), 400, "VolumeBackup.0010"),
        (backup(json!({"volume_id": "disk-1"})), 400, "VolumeBackup.0011"),
        (backup(json!({"volume_id": UNKNOWN_ID})), 404, "VolumeBackup.0021"),
        (
            backup(json!({"tags": [{"key": "a/b", "value": "v"}]})),
            400,
            "VolumeBackup.0049",
        ),
        (
            backup(json!({"tags": [{"key": "", "value": "v"}]})),
            400,
            "VolumeBackup.0049",
        ),
        (
            backup(json!({"tags": [{"key": "k", "value": "v".repeat(44)}]})),
            400,
            "VolumeBackup.0049",
        ),
        (backup(json!({"tags": tags(11)})), 400, "VolumeBackup.0050"),
        (
            json!({"volume_id": VOL_10, "name": "no-wrapper"}),
            400,
            "VolumeBackup.0002",
        ),
        (backup(json!({"name": 42})), 400, "VolumeBackup.0002"),
    ];
    for (body, status, code) in cases {
        let answer = vbs.post(&v2("/cloudbackups"), body.clone()).await;
        assert_vbs_error(&answer, status, code);
    }
    let not_json = vbs
        .send_raw(Method::POST, &v2("/cloudbackups"), Some("{not json".into()))
        .await;
    assert_vbs_error(&not_json, 400, "VolumeBackup.0002");
    let empty = vbs
        .send_raw(Method::POST, &v2("/cloudbackups"), Some(String::new()))
        .await;
    assert_vbs_error(&empty, 400, "VolumeBackup.0002");
    // Nothing was created by any of them.
    let list = vbs.get(&v2("/backups")).await;
    assert_eq!(list.body["backups"], json!([]));
}

#[tokio::test]
async fn create_refuses_busy_or_broken_volumes() {
    let broken = VolumeSpec {
        id: "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0aee".into(),
        name: "broken".into(),
        size_gb: 10,
        status: "error".into(),
    };
    let mut config = SimulatorConfig::for_testing();
    config.volumes.push(broken.clone());
    let vbs = start_with(config).await;

    let answer = vbs
        .post(
            &v2("/cloudbackups"),
            json!({"backup": {"volume_id": broken.id, "name": "b"}}),
        )
        .await;
    assert_vbs_error(&answer, 400, "VolumeBackup.0012");

    vbs.create_backup(VOL_40, "attached-disks-are-fine").await;
    let again = vbs
        .post(
            &v2("/cloudbackups"),
            json!({"backup": {"volume_id": VOL_40, "name": "again"}}),
        )
        .await;
    assert_vbs_error(&again, 400, "VolumeBackup.0013");
    vbs.step(3);
    let after = vbs
        .post(
            &v2("/cloudbackups"),
            json!({"backup": {"volume_id": VOL_40, "name": "again"}}),
        )
        .await;
    assert_eq!(after.status, 200, "{}", after.text);
}

#[tokio::test]
async fn restore_walks_both_backup_and_volume_back_to_available() {
    let vbs = start().await;
    let backup_id = vbs.available_backup(VOL_10, "source").await;
    let answer = vbs
        .post(
            &v2(&format!("/cloudbackups/{backup_id}/restore")),
            json!({"restore": {"volume_id": VOL_20}}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let job_id = text(&answer.body["job_id"]);
    let job = vbs.job(&job_id).await;
    assert_eq!(job["job_type"], "bksRestoreBackup");
    assert_eq!(job["status"], "INIT");
    assert_eq!(job["entities"], json!({"backup_id": backup_id, "volume_id": VOL_20}));
    assert_eq!(vbs.backup(&backup_id).await["status"], "restoring");
    assert_eq!(vbs.volume_status(VOL_20), "restoring-backup");

    vbs.step(1);
    assert_eq!(vbs.job(&job_id).await["status"], "RUNNING");
    vbs.step(2);
    assert_eq!(vbs.job(&job_id).await["status"], "SUCCESS");
    assert_eq!(vbs.backup(&backup_id).await["status"], "available");
    assert_eq!(vbs.volume_status(VOL_20), "available");
}

#[tokio::test]
async fn restore_checks_backup_and_target() {
    let vbs = start().await;
    let backup_id = vbs.available_backup(VOL_10, "source").await;
    let restore = |backup: &str| v2(&format!("/cloudbackups/{backup}/restore"));
    let target = |volume: &str| json!({"restore": {"volume_id": volume}});

    let cases = [
        (restore("not-a-uuid"), target(VOL_20), 400, "VolumeBackup.0204"),
        (restore(&backup_id), json!({"restore": {}}), 400, "VolumeBackup.0208"),
        (
            restore(&backup_id),
            json!({"restore": {"volume_id": ""}}),
            400,
            "VolumeBackup.0208",
        ),
        (
            restore(&backup_id),
            json!({"volume_id": VOL_20}),
            400,
            "VolumeBackup.0210",
        ),
        (restore(UNKNOWN_ID), target(VOL_20), 404, "VolumeBackup.0111"),
        (restore(&backup_id), target(UNKNOWN_ID), 404, "VolumeBackup.0111"),
        (restore(&backup_id), target(VOL_5), 400, "VolumeBackup.0209"),
        (restore(&backup_id), target(VOL_40), 400, "VolumeBackup.0205"),
    ];
    for (path, body, status, code) in cases {
        let answer = vbs.post(&path, body).await;
        assert_vbs_error(&answer, status, code);
    }

    vbs.create_backup(VOL_20, "busy").await;
    let busy = vbs.post(&restore(&backup_id), target(VOL_20)).await;
    assert_vbs_error(&busy, 400, "VolumeBackup.0206");

    let (_, creating) = vbs.create_backup(VOL_5, "not-done").await;
    let not_ready = vbs.post(&restore(&creating), target(VOL_5)).await;
    assert_vbs_error(&not_ready, 400, "VolumeBackup.0089");
}

#[tokio::test]
async fn deprecated_delete_removes_the_backup_when_its_job_ends() {
    let vbs = start().await;
    let (_, creating) = vbs.create_backup(VOL_10, "doomed").await;
    let too_early = vbs
        .send(Method::POST, &v2(&format!("/cloudbackups/{creating}")), None)
        .await;
    assert_vbs_error(&too_early, 400, "VolumeBackup.0089");
    vbs.step(3);

    let answer = vbs
        .send(Method::POST, &v2(&format!("/cloudbackups/{creating}")), None)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let job_id = text(&answer.body["job_id"]);
    let job = vbs.job(&job_id).await;
    assert_eq!(job["job_type"], "bksDeleteBackup");
    assert_eq!(job["entities"], json!({"backup_id": creating}));
    assert_eq!(vbs.backup(&creating).await["status"], "deleting");

    vbs.step(3);
    assert_eq!(vbs.job(&job_id).await["status"], "SUCCESS");
    let gone = vbs.get(&v2(&format!("/backups/{creating}"))).await;
    assert_item_not_found(&gone, &format!("Backup {creating} could not be found."));

    let bad_id = vbs.send(Method::POST, &v2("/cloudbackups/nope"), None).await;
    assert_vbs_error(&bad_id, 400, "VolumeBackup.0204");
    let unknown = vbs
        .send(Method::POST, &v2(&format!("/cloudbackups/{UNKNOWN_ID}")), None)
        .await;
    assert_vbs_error(&unknown, 404, "VolumeBackup.0111");
}

#[tokio::test]
async fn a_job_marked_to_fail_ends_in_fail_and_leaves_the_backup_in_error() {
    let vbs = start().await;
    let (job_id, backup_id) = vbs.create_backup(VOL_10, "unlucky").await;
    assert!(vbs.sim.fail_job(&job_id, "VolumeBackup.0064", "disk on fire"));
    assert!(!vbs.sim.fail_job("ffffffffffffffffffffffffffffffff", "X", "y"));

    vbs.step(1);
    let running = vbs.job(&job_id).await;
    assert_eq!(running["status"], "RUNNING");
    assert_eq!(running["error_code"], Value::Null);
    vbs.step(2);
    let job = vbs.job(&job_id).await;
    assert_eq!(job["status"], "FAIL");
    assert_eq!(job["error_code"], "VolumeBackup.0064");
    assert_eq!(job["fail_reason"], "disk on fire");
    assert_time(&job["end_time"], 3, true);
    assert!(!vbs.sim.fail_job(&job_id, "X", "too late"));

    let backup = vbs.backup(&backup_id).await;
    assert_eq!(backup["status"], "error");
    assert_eq!(backup["fail_reason"], "disk on fire");

    // A failed backup can still be deleted.
    let delete = vbs.delete(&v2(&format!("/backups/{backup_id}"))).await;
    assert_eq!(delete.status, 202, "{}", delete.text);
}

#[tokio::test]
async fn the_next_jobs_can_be_told_to_fail() {
    let vbs = start().await;
    vbs.sim.fail_next_jobs(2, "VolumeBackup.0027", "backup system down");
    let (first, _) = vbs.create_backup(VOL_10, "one").await;
    let (second, _) = vbs.create_backup(VOL_20, "two").await;
    let (third, _) = vbs.create_backup(VOL_5, "three").await;
    vbs.step(3);
    assert_eq!(vbs.job(&first).await["status"], "FAIL");
    assert_eq!(vbs.job(&second).await["error_code"], "VolumeBackup.0027");
    assert_eq!(vbs.job(&third).await["status"], "SUCCESS");

    let third_backup = text(&vbs.job(&third).await["entities"]["backup_id"]);
    vbs.sim.fail_next_jobs(1, "VolumeBackup.0200", "restore exploded");
    let answer = vbs
        .post(
            &v2(&format!("/cloudbackups/{third_backup}/restore")),
            json!({"restore": {"volume_id": VOL_20}}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    vbs.step(3);
    let job = vbs.job(&text(&answer.body["job_id"])).await;
    assert_eq!(job["status"], "FAIL");
    assert_eq!(job["fail_reason"], "restore exploded");
    assert_eq!(vbs.backup(&third_backup).await["status"], "available");
    assert_eq!(vbs.volume_status(VOL_20), "error_restoring");
}

#[tokio::test]
async fn jobs_belong_to_their_project() {
    let vbs = start().await;
    let (job_id, backup_id) = vbs.create_backup(VOL_10, "mine").await;
    let elsewhere = vbs.get(&format!("/v1/{OTHER_PROJECT}/jobs/{job_id}")).await;
    assert_vbs_error(&elsewhere, 404, "common.0011");
    let unknown = vbs.get(&job_path("0123456789abcdef0123456789abcdef")).await;
    assert_vbs_error(&unknown, 404, "common.0011");
    let other_backup = vbs.get(&format!("/v2/{OTHER_PROJECT}/backups/{backup_id}")).await;
    assert_eq!(other_backup.status, 404);
    let other_list = vbs.get(&format!("/v2/{OTHER_PROJECT}/backups/detail")).await;
    assert_eq!(other_list.body["backups"], json!([]));
}

// ------------------------------------------------------------ native API

#[tokio::test]
async fn native_create_answers_202_with_links_back_here() {
    let vbs = start().await;
    let answer = vbs
        .post(
            &v2("/backups"),
            json!({"backup": {
                "volume_id": VOL_10,
                "snapshot_id": "2bb856e1-b3d8-4432-a858-09e4ce939389",
                "name": "native-1",
                "description": "d".repeat(255),
                "container": "ignored",
                "incremental": true,
                "force": false
            }}),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    let backup = &answer.body["backup"];
    let id = text(&backup["id"]);
    assert_eq!(backup["name"], "native-1");
    assert_eq!(
        backup["links"][0]["href"],
        format!("{}/v2/{PROJECT}/backups/{id}", vbs.sim.url())
    );
    assert_eq!(backup["links"][1]["rel"], "bookmark");

    let detail = vbs.backup(&id).await;
    assert_eq!(detail["status"], "creating");
    assert_eq!(detail["description"], "d".repeat(255));
    assert_eq!(detail["snapshot_id"], "2bb856e1-b3d8-4432-a858-09e4ce939389");
    vbs.step(3);
    assert_eq!(vbs.backup(&id).await["status"], "available");

    let nameless = vbs
        .post(
            &v2("/backups"),
            json!({"backup": {"volume_id": VOL_20, "snapshot_id": "2bb856e1-b3d8-4432-a858-09e4ce939389"}}),
        )
        .await;
    assert_eq!(nameless.status, 202, "{}", nameless.text);
    assert_eq!(nameless.body["backup"]["name"], Value::Null);
    let plain = vbs.backup(&text(&nameless.body["backup"]["id"])).await;
    assert_eq!(plain["description"], Value::Null);
}

#[tokio::test]
async fn native_errors_use_bad_request_and_item_not_found() {
    let vbs = start().await;
    let snapshot = "2bb856e1-b3d8-4432-a858-09e4ce939389";
    let native =
        |fields: Value| json!({ "backup": merged(json!({"volume_id": VOL_10, "snapshot_id": snapshot}), fields) });
    let cases = [
        (native(json!({"snapshot_id": null})), "VolumeBackup.0002"),
        (native(json!({"volume_id": null})), "VolumeBackup.0010"),
        (native(json!({"volume_id": "x"})), "VolumeBackup.0011"),
        (native(json!({"name": "auto-1"})), "VolumeBackup.0005"),
        (native(json!({"description": "d".repeat(256)})), "VolumeBackup.0006"),
        (json!({"nothing": true}), "VolumeBackup.0002"),
    ];
    for (body, code) in cases {
        let answer = vbs.post(&v2("/backups"), body).await;
        assert_bad_request(&answer, json!(code));
    }
    let unknown_volume = vbs
        .post(&v2("/backups"), native(json!({"volume_id": UNKNOWN_ID})))
        .await;
    assert_item_not_found(&unknown_volume, &format!("Volume {UNKNOWN_ID} could not be found."));

    let missing = vbs.get(&v2(&format!("/backups/{UNKNOWN_ID}"))).await;
    assert_item_not_found(&missing, &format!("Backup {UNKNOWN_ID} could not be found."));
    let delete_missing = vbs.delete(&v2(&format!("/backups/{UNKNOWN_ID}"))).await;
    assert_item_not_found(&delete_missing, &format!("Backup {UNKNOWN_ID} could not be found."));
}

#[tokio::test]
async fn native_delete_and_restore() {
    let vbs = start().await;
    let (_, creating) = vbs.create_backup(VOL_10, "native").await;
    let too_early = vbs.delete(&v2(&format!("/backups/{creating}"))).await;
    assert_bad_request(&too_early, json!("VolumeBackup.0089"));
    vbs.step(3);

    let restore = vbs
        .post(
            &v2(&format!("/backups/{creating}/restore")),
            json!({"restore": {"volume_id": VOL_20}}),
        )
        .await;
    assert_eq!(restore.status, 202, "{}", restore.text);
    assert_eq!(
        restore.body,
        json!({"restore": {"backup_id": creating, "volume_id": VOL_20, "volume_name": "db-data"}})
    );
    assert_eq!(vbs.volume_status(VOL_20), "restoring-backup");
    let busy = vbs.delete(&v2(&format!("/backups/{creating}"))).await;
    assert_bad_request(&busy, json!("VolumeBackup.0089"));
    vbs.step(3);
    assert_eq!(vbs.volume_status(VOL_20), "available");

    let small = vbs
        .post(
            &v2(&format!("/backups/{creating}/restore")),
            json!({"restore": {"volume_id": VOL_5}}),
        )
        .await;
    assert_bad_request(&small, json!("VolumeBackup.0209"));
    let no_volume = vbs
        .post(&v2(&format!("/backups/{creating}/restore")), json!({"restore": {}}))
        .await;
    assert_bad_request(&no_volume, json!("VolumeBackup.0208"));
    let unknown = vbs
        .post(
            &v2(&format!("/backups/{UNKNOWN_ID}/restore")),
            json!({"restore": {"volume_id": VOL_20}}),
        )
        .await;
    assert_item_not_found(&unknown, &format!("Backup {UNKNOWN_ID} could not be found."));

    let delete = vbs.delete(&v2(&format!("/backups/{creating}"))).await;
    assert_eq!(delete.status, 202);
    assert_eq!(delete.text, "");
    assert_eq!(vbs.backup(&creating).await["status"], "deleting");
    vbs.step(3);
    let gone = vbs.get(&v2(&format!("/backups/{creating}"))).await;
    assert_eq!(gone.status, 404);
}

/// 27 backups: nine rounds over three volumes, the clock stepped between
/// rounds so each round shares one created_at and ids break the ties.
async fn many_backups(vbs: &Vbs) -> Vec<String> {
    let mut ids = Vec::new();
    for round in 0..9 {
        for volume in [VOL_10, VOL_20, VOL_40] {
            let (_, id) = vbs.create_backup(volume, &format!("b-{round}-{}", &volume[34..])).await;
            ids.push(id);
        }
        vbs.step(3);
    }
    ids
}

fn ids_of(answer: &Answer) -> Vec<String> {
    answer.body["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|b| text(&b["id"]))
        .collect()
}

#[tokio::test]
async fn paging_with_limit_and_marker_reaches_every_backup_once() {
    let vbs = start().await;
    let created = many_backups(&vbs).await;

    let everything = vbs.get(&v2("/backups/detail")).await;
    assert_eq!(everything.status, 200);
    assert!(everything.body.get("backups_links").is_none());
    let all = ids_of(&everything);
    assert_eq!(all.len(), 27);
    let created_at: Vec<String> = everything.body["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|b| text(&b["created_at"]))
        .collect();
    assert!(created_at.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let mut seen = Vec::new();
    let mut next = format!("{}{}", vbs.sim.url(), v2("/backups/detail?limit=10"));
    let mut pages = 0;
    loop {
        let page = vbs.get(&next).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(ids_of(&page));
        pages += 1;
        let Some(link) = page.body["backups_links"].as_array() else {
            break;
        };
        assert_eq!(link[0]["rel"], "next");
        next = text(&link[0]["href"]);
        assert!(
            next.starts_with(&format!("{}/v2/{PROJECT}/backups/detail?", vbs.sim.url())),
            "{next}"
        );
        let last = seen.last().expect("a full page");
        assert!(
            next.contains("limit=10") && next.contains(&format!("marker={last}")),
            "{next}"
        );
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all);
    let mut sorted_created = created.clone();
    sorted_created.sort();
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    assert_eq!(sorted_seen, sorted_created);

    // The summary list pages the same way and keeps the filters in its link.
    let first = vbs
        .get(&v2(&format!("/backups?limit=4&volume_id={VOL_20}&status=available")))
        .await;
    assert_eq!(ids_of(&first).len(), 4);
    let summary = &first.body["backups"][0];
    assert_eq!(summary.as_object().map(|o| o.len()), Some(3), "{summary}");
    let href = text(&first.body["backups_links"][0]["href"]);
    assert!(
        href.starts_with(&format!("{}/v2/{PROJECT}/backups?", vbs.sim.url())),
        "{href}"
    );
    assert!(href.contains(&format!("volume_id={VOL_20}")), "{href}");
    assert!(href.contains("status=available"), "{href}");
    let second = vbs.get(&href).await;
    assert_eq!(ids_of(&second).len(), 4);
    let third = vbs.get(&text(&second.body["backups_links"][0]["href"])).await;
    assert_eq!(ids_of(&third).len(), 1);
    assert!(third.body.get("backups_links").is_none());

    // Offset counts after the marker.
    let after_marker = vbs
        .get(&v2(&format!("/backups?marker={}&offset=2&limit=3", all[4])))
        .await;
    assert_eq!(ids_of(&after_marker), all[7..10].to_vec());
}

#[tokio::test]
async fn list_sorts_and_filters() {
    let vbs = start().await;
    vbs.available_backup(VOL_20, "charlie").await;
    vbs.available_backup(VOL_10, "alpha").await;
    vbs.available_backup(VOL_40, "bravo").await;
    let (_, creating) = vbs.create_backup(VOL_10, "delta").await;

    let names = |answer: &Answer| -> Vec<String> {
        answer.body["backups"]
            .as_array()
            .expect("backups")
            .iter()
            .map(|b| text(&b["name"]))
            .collect()
    };
    let by_name = vbs.get(&v2("/backups/detail?sort_key=name&sort_dir=asc")).await;
    assert_eq!(names(&by_name), ["alpha", "bravo", "charlie", "delta"]);
    let by_size = vbs.get(&v2("/backups/detail?sort_key=size&sort_dir=desc")).await;
    let sized = names(&by_size);
    assert_eq!(sized[..2], ["bravo", "charlie"]);
    assert_eq!(sized[2..], tied_by_id_desc(&by_size));
    let newest_first = vbs.get(&v2("/backups/detail")).await;
    assert_eq!(names(&newest_first), ["delta", "bravo", "alpha", "charlie"]);
    let oldest_first = vbs.get(&v2("/backups/detail?sort_dir=asc")).await;
    assert_eq!(names(&oldest_first), ["charlie", "alpha", "bravo", "delta"]);
    let by_status = vbs.get(&v2("/backups/detail?sort_key=status&sort_dir=asc")).await;
    assert_eq!(names(&by_status).last().map(String::as_str), Some("delta"));

    let named = vbs.get(&v2("/backups/detail?name=alpha")).await;
    assert_eq!(names(&named), ["alpha"]);
    let creating_only = vbs.get(&v2("/backups?status=creating")).await;
    assert_eq!(ids_of(&creating_only), [creating]);
    let of_volume = vbs.get(&v2(&format!("/backups/detail?volume_id={VOL_10}"))).await;
    assert_eq!(names(&of_volume), ["delta", "alpha"]);
}

/// The two 10 GB backups tie on size; ids decide, in the same direction.
fn tied_by_id_desc(answer: &Answer) -> Vec<String> {
    let backups = answer.body["backups"].as_array().expect("backups");
    let mut tied: Vec<(String, String)> = backups[2..]
        .iter()
        .map(|b| (text(&b["id"]), text(&b["name"])))
        .collect();
    tied.sort();
    tied.reverse();
    tied.into_iter().map(|(_, name)| name).collect()
}

#[tokio::test]
async fn list_parameters_are_checked() {
    let vbs = start().await;
    vbs.available_backup(VOL_10, "only").await;
    for query in [
        "limit=-1",
        "limit=ten",
        "offset=-1",
        "offset=x",
        "sort_key=colour",
        "sort_dir=up",
    ] {
        let answer = vbs.get(&v2(&format!("/backups/detail?{query}"))).await;
        assert_bad_request(&answer, json!("VolumeBackup.0002"));
    }
    let marker = vbs.get(&v2(&format!("/backups?marker={UNKNOWN_ID}"))).await;
    assert_bad_request(&marker, json!("VolumeBackup.0002"));
    assert_eq!(
        marker.body["badRequest"]["message"],
        format!("Marker {UNKNOWN_ID} could not be found.")
    );
    for query in ["limit=5000", "limit=0", "sort_key=disk_format", "offset=7"] {
        let answer = vbs.get(&v2(&format!("/backups?{query}"))).await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.text);
    }
}

// ---------------------------------------------------------------- policies

#[tokio::test]
async fn policy_create_list_update_enable_and_delete() {
    let vbs = start().await;
    let mut body = policy_body("Test_Policy");
    body["tags"] = json!([{"key": "key", "value": "value"}]);
    let created = vbs.post(&v2("/backuppolicy"), body).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let id = text(&created.body["backup_policy_id"]);
    assert!(is_uuid(&id));

    let list = vbs.get(&v2("/backuppolicy")).await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body,
        json!({"backup_policies": [{
            "backup_policy_id": id,
            "backup_policy_name": "Test_Policy",
            "scheduled_policy": {
                "remain_first_backup_of_curMonth": "Y",
                "rentention_num": 10,
                "frequency": 1,
                "start_time": "12:00",
                "status": "ON"
            },
            "policy_resource_count": 0,
            "tags": [{"key": "key", "value": "value"}]
        }]})
    );

    let weekly = vbs
        .put(
            &v2(&format!("/backuppolicy/{id}")),
            json!({"backup_policy_name": "weekly", "scheduled_policy": {
                "week_frequency": ["MON", "THU"], "rentention_day": 30, "start_time": "22:00,02:00", "status": "OFF"
            }}),
        )
        .await;
    assert_eq!(weekly.status, 200, "{}", weekly.text);
    assert_eq!(weekly.body, json!({"backup_policy_id": id}));
    let policy = &vbs.get(&v2("/backuppolicy")).await.body["backup_policies"][0];
    assert_eq!(policy["backup_policy_name"], "weekly");
    assert_eq!(
        policy["scheduled_policy"],
        json!({
            "remain_first_backup_of_curMonth": "Y",
            "rentention_num": 10,
            "rentention_day": 30,
            "week_frequency": ["MON", "THU"],
            "start_time": "22:00,02:00",
            "status": "OFF"
        })
    );

    // Enabling is the same PUT with status ON and the schedule's frequency.
    let enable = vbs
        .put(
            &v2(&format!("/backuppolicy/{id}")),
            json!({"scheduled_policy": {"frequency": 7, "status": "ON"}}),
        )
        .await;
    assert_eq!(enable.status, 200, "{}", enable.text);
    let schedule = &vbs.get(&v2("/backuppolicy")).await.body["backup_policies"][0]["scheduled_policy"];
    assert_eq!(schedule["status"], "ON");
    assert_eq!(schedule["frequency"], 7);
    assert!(schedule.get("week_frequency").is_none());

    let status_only = vbs
        .put(
            &v2(&format!("/backuppolicy/{id}")),
            json!({"scheduled_policy": {"status": "OFF"}}),
        )
        .await;
    assert_vbs_error(&status_only, 400, "AutoBackup.0106");
    let name_only = vbs
        .put(&v2(&format!("/backuppolicy/{id}")), json!({"backup_policy_name": "x"}))
        .await;
    assert_vbs_error(&name_only, 400, "AutoBackup.0106");
    let unknown = vbs
        .put(
            &v2(&format!("/backuppolicy/{UNKNOWN_ID}")),
            json!({"scheduled_policy": {"frequency": 1}}),
        )
        .await;
    assert_vbs_error(&unknown, 404, "AutoBackup.0205");

    let deleted = vbs.delete(&v2(&format!("/backuppolicy/{id}"))).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.text, "");
    assert_eq!(vbs.get(&v2("/backuppolicy")).await.body, json!({"backup_policies": []}));
    let again = vbs.delete(&v2(&format!("/backuppolicy/{id}"))).await;
    assert_vbs_error(&again, 404, "AutoBackup.0205");
}

#[tokio::test]
async fn policy_fields_are_checked_on_create_and_update() {
    let vbs = start().await;
    let with = |path: &str, value: Value| {
        let mut body = policy_body("p1");
        let (object, key) = match path.split_once('.') {
            Some((_, key)) => (&mut body["scheduled_policy"], key),
            None => (&mut body, path),
        };
        match value {
            Value::Null => {
                object.as_object_mut().expect("object").remove(key);
            }
            value => object[key] = value,
        }
        body
    };
    let cases = [
        (with("backup_policy_name", json!("")), "AutoBackup.0101"),
        (with("backup_policy_name", Value::Null), "AutoBackup.0101"),
        (with("backup_policy_name", json!("p".repeat(65))), "AutoBackup.0101"),
        (with("backup_policy_name", json!("bad name")), "AutoBackup.0102"),
        (with("backup_policy_name", json!("default_policy")), "AutoBackup.0100"),
        (with("scheduled_policy", Value::Null), "AutoBackup.0001"),
        (with("scheduled_policy", json!({})), "AutoBackup.0001"),
        (with("s.start_time", json!("12:30")), "AutoBackup.0103"),
        (with("s.start_time", Value::Null), "AutoBackup.0103"),
        (with("s.status", json!("MAYBE")), "AutoBackup.0104"),
        (with("s.status", Value::Null), "AutoBackup.0104"),
        (with("s.remain_first_backup_of_curMonth", json!("X")), "AutoBackup.0105"),
        (
            with("s.remain_first_backup_of_curMonth", json!(true)),
            "AutoBackup.0105",
        ),
        (with("s.frequency", json!(31)), "AutoBackup.0106"),
        (with("s.frequency", json!(0)), "AutoBackup.0106"),
        (with("s.frequency", Value::Null), "AutoBackup.0106"),
        (with("s.rentention_num", json!(100)), "AutoBackup.0107"),
        (with("s.rentention_num", json!(1)), "AutoBackup.0107"),
        (with("s.rentention_day", json!(1)), "AutoBackup.0108"),
        (with("s.week_frequency", json!(["MOn"])), "AutoBackup.0109"),
        (with("s.week_frequency", json!([])), "AutoBackup.0109"),
        (with("tags", json!([{"key": "a=b", "value": "v"}])), "AutoBackup.0221"),
        (with("s.frequency", json!("1")), "AutoBackup.0008"),
    ];
    for (body, code) in cases {
        let answer = vbs.post(&v2("/backuppolicy"), body.clone()).await;
        assert_vbs_error(&answer, 400, code);
    }
    let not_json = vbs
        .send_raw(Method::POST, &v2("/backuppolicy"), Some("policy please".into()))
        .await;
    assert_vbs_error(&not_json, 400, "AutoBackup.0008");
    let empty = vbs
        .send_raw(Method::POST, &v2("/backuppolicy"), Some(String::new()))
        .await;
    assert_vbs_error(&empty, 400, "AutoBackup.0000");

    // The widest values creation allows.
    let wide = with("s.frequency", json!(30));
    let wide_answer = vbs.post(&v2("/backuppolicy"), wide).await;
    assert_eq!(wide_answer.status, 200, "{}", wide_answer.text);
    let id = text(&wide_answer.body["backup_policy_id"]);

    // Updates allow less.
    let update = |schedule: Value| json!({ "scheduled_policy": schedule });
    let path = v2(&format!("/backuppolicy/{id}"));
    let cases = [
        (update(json!({"frequency": 15})), "AutoBackup.0106"),
        (
            update(json!({"frequency": 14, "rentention_num": 15})),
            "AutoBackup.0107",
        ),
        (
            update(json!({"frequency": 14, "rentention_day": 1_000_000})),
            "AutoBackup.0108",
        ),
        (
            update(json!({"frequency": 14, "start_time": "9:00"})),
            "AutoBackup.0103",
        ),
        (update(json!({"frequency": 14, "status": "on"})), "AutoBackup.0104"),
        (update(json!({"week_frequency": ["SUNDAY"]})), "AutoBackup.0109"),
        (
            json!({"backup_policy_name": "default", "scheduled_policy": {"frequency": 1}}),
            "AutoBackup.0100",
        ),
    ];
    for (body, code) in cases {
        let answer = vbs.put(&path, body.clone()).await;
        assert_vbs_error(&answer, 400, code);
    }
    let widest_update = vbs
        .put(
            &path,
            update(json!({"frequency": 14, "rentention_num": 14, "rentention_day": 999_999})),
        )
        .await;
    assert_eq!(widest_update.status, 200, "{}", widest_update.text);
}

#[tokio::test]
async fn the_eleventh_policy_is_refused() {
    let vbs = start().await;
    for n in 0..10 {
        vbs.create_policy(&format!("policy_{n}")).await;
    }
    let eleventh = vbs.post(&v2("/backuppolicy"), policy_body("policy_10")).await;
    assert_vbs_error(&eleventh, 400, "AutoBackup.0203");
    // Another project has its own ten.
    let elsewhere = vbs
        .post(&format!("/v2/{OTHER_PROJECT}/backuppolicy"), policy_body("policy_10"))
        .await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.text);
}

#[tokio::test]
async fn associate_reports_each_volume() {
    let broken = VolumeSpec {
        id: "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0aee".into(),
        name: "broken".into(),
        size_gb: 10,
        status: "error".into(),
    };
    let mut config = SimulatorConfig::for_testing();
    config.volumes.push(broken.clone());
    let vbs = start_with(config).await;
    let policy = vbs.create_policy("first").await;
    let other = vbs.create_policy("second").await;

    let answer = vbs.associate(&policy, &[VOL_10, VOL_40]).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.body,
        json!({
            "success_resources": [
                {"resource_id": VOL_10, "resource_type": "volume", "availability_zone": "eu-de-01", "os_vol_host_attr": "pod01.eu-de-01"},
                {"resource_id": VOL_40, "resource_type": "volume", "availability_zone": "eu-de-01", "os_vol_host_attr": "pod01.eu-de-01"}
            ],
            "fail_resources": []
        })
    );

    let mixed = vbs
        .associate(&other, &[VOL_10, UNKNOWN_ID, broken.id.as_str(), VOL_20])
        .await;
    assert_eq!(mixed.status, 200, "{}", mixed.text);
    let success: Vec<String> = mixed.body["success_resources"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| text(&r["resource_id"]))
        .collect();
    assert_eq!(success, [VOL_20]);
    let failures = mixed.body["fail_resources"].as_array().expect("list");
    let failure = |id: &str| {
        failures
            .iter()
            .find(|f| f["resource_id"] == id)
            .unwrap_or_else(|| panic!("no failure for {id}: {}", mixed.text))
            .clone()
    };
    assert_eq!(failure(VOL_10)["code"], "AutoBackup.1400");
    assert_eq!(failure(UNKNOWN_ID)["code"], "AutoBackup.0208");
    assert_eq!(failure(&broken.id)["code"], "AutoBackup.0206");
    assert!(failure(VOL_10)["message"].is_string());
    assert_eq!(failure(VOL_10)["resource_type"], "volume");

    // Binding again to the same policy is fine, and counted once.
    let again = vbs.associate(&policy, &[VOL_10]).await;
    assert_eq!(again.body["success_resources"][0]["resource_id"], VOL_10);
    let counts: Vec<Value> = vbs.get(&v2("/backuppolicy")).await.body["backup_policies"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["policy_resource_count"].clone())
        .collect();
    assert_eq!(counts, [json!(2), json!(1)]);

    let path = v2("/backuppolicyresources");
    let whole_request_errors = [
        (
            json!({"backup_policy_id": policy, "resources": []}),
            400,
            "AutoBackup.0207",
        ),
        (json!({"backup_policy_id": policy}), 400, "AutoBackup.0207"),
        (
            json!({"backup_policy_id": policy, "resources": [{"resource_type": "volume"}]}),
            400,
            "AutoBackup.0209",
        ),
        (
            json!({"backup_policy_id": policy, "resources": [{"resource_id": VOL_5}]}),
            400,
            "AutoBackup.0209",
        ),
        (
            json!({"backup_policy_id": policy, "resources": [{"resource_id": VOL_5, "resource_type": "server"}]}),
            400,
            "AutoBackup.0211",
        ),
        (
            json!({"backup_policy_id": UNKNOWN_ID, "resources": [{"resource_id": VOL_5, "resource_type": "volume"}]}),
            404,
            "AutoBackup.0205",
        ),
        (
            json!({"resources": [{"resource_id": VOL_5, "resource_type": "volume"}]}),
            400,
            "AutoBackup.0006",
        ),
    ];
    for (body, status, code) in whole_request_errors {
        let answer = vbs.post(&path, body).await;
        assert_vbs_error(&answer, status, code);
    }
}

#[tokio::test]
async fn disassociate_and_policy_delete_free_volumes() {
    let vbs = start().await;
    let policy = vbs.create_policy("first").await;
    vbs.associate(&policy, &[VOL_10, VOL_20]).await;
    let path = v2(&format!("/backuppolicyresources/{policy}/deleted_resources"));
    let answer = vbs
        .post(
            &path,
            json!({"resources": [{"resource_id": VOL_10, "resource_type": "volume"}, {"resource_id": VOL_5}]}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["success_resources"], json!([{"resource_id": VOL_10}]));
    let failures = answer.body["fail_resources"].as_array().expect("list");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["resource_id"], VOL_5);
    assert_eq!(failures[0]["code"], "AutoBackup.0208");
    assert!(failures[0]["message"].is_string());

    let empty = vbs.post(&path, json!({"resources": []})).await;
    assert_vbs_error(&empty, 400, "AutoBackup.0207");
    let blank = vbs.post(&path, json!({"resources": [{"resource_id": ""}]})).await;
    assert_vbs_error(&blank, 400, "AutoBackup.0209");
    let unknown = vbs
        .post(
            &v2(&format!("/backuppolicyresources/{UNKNOWN_ID}/deleted_resources")),
            json!({"resources": [{"resource_id": VOL_10}]}),
        )
        .await;
    assert_vbs_error(&unknown, 404, "AutoBackup.0205");

    // VOL_20 is still bound; deleting the policy frees it for another.
    let other = vbs.create_policy("second").await;
    assert_eq!(
        vbs.associate(&other, &[VOL_20]).await.body["fail_resources"][0]["code"],
        "AutoBackup.1400"
    );
    assert_eq!(vbs.delete(&v2(&format!("/backuppolicy/{policy}"))).await.status, 204);
    let freed = vbs.associate(&other, &[VOL_20]).await;
    assert_eq!(freed.body["success_resources"][0]["resource_id"], VOL_20);
}

#[tokio::test]
async fn executing_a_policy_runs_one_task_and_job_per_volume() {
    let vbs = start().await;
    let policy = vbs.create_policy("nightly").await;
    vbs.associate(&policy, &[VOL_10, VOL_40]).await;
    let execute = v2(&format!("/backuppolicy/{policy}/action"));

    let answer = vbs.send(Method::POST, &execute, None).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert_eq!(answer.text, "");

    let tasks = vbs.tasks(&policy, "").await;
    assert_eq!(tasks.status, 200, "{}", tasks.text);
    assert_eq!(tasks.body["count"], 2);
    let list = tasks.body["tasks"].as_array().expect("tasks").clone();
    let mut volumes: Vec<String> = list.iter().map(|t| text(&t["resource_id"])).collect();
    volumes.sort();
    assert_eq!(volumes, [VOL_10, VOL_40]);
    for task in &list {
        assert_eq!(task["status"], "WAITING");
        assert_eq!(task["resource_type"], "volume");
        assert!(is_uuid(&text(&task["job_id"])));
        assert_time(&task["created_at"], 3, false);
        assert!(task.get("finished_at").is_none());
        let name = text(&task["backup_name"]);
        assert!(name.starts_with("autobk_") && name.len() == 11, "{name}");
        let job = vbs.job(&text(&task["vbs_job_id"])).await;
        assert_eq!(job["job_type"], "bksCreateBackup");
        assert_eq!(job["entities"]["volume_id"], task["resource_id"]);
        assert_eq!(job["entities"]["bks_create_volume_name"], name.as_str());
    }

    let busy = vbs.send(Method::POST, &execute, None).await;
    assert_vbs_error(&busy, 400, "AutoBackup.0225");

    vbs.step(1);
    let running = vbs.tasks(&policy, "").await;
    assert!(
        running.body["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .all(|t| t["status"] == "RUNNING")
    );
    assert_vbs_error(&vbs.send(Method::POST, &execute, None).await, 400, "AutoBackup.0225");

    vbs.step(2);
    let done = vbs.tasks(&policy, "").await;
    for task in done.body["tasks"].as_array().expect("tasks") {
        assert_eq!(task["status"], "EXECUTE_SUCCESS");
        assert_time(&task["finished_at"], 3, false);
        assert_eq!(vbs.job(&text(&task["vbs_job_id"])).await["status"], "SUCCESS");
    }
    let backups = vbs.get(&v2("/backups/detail?status=available")).await;
    let names: Vec<String> = backups.body["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|b| text(&b["name"]))
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.iter().all(|n| n.starts_with("autobk_")));

    // A second run is allowed now; a failed job makes its task EXECUTE_FAIL.
    vbs.sim.fail_next_jobs(1, "VolumeBackup.0064", "simulated");
    assert_eq!(vbs.send(Method::POST, &execute, None).await.status, 204);
    vbs.step(3);
    let all = vbs.tasks(&policy, "").await;
    assert_eq!(all.body["count"], 4);
    let failed = vbs.tasks(&policy, "?status=EXECUTE_FAIL").await;
    assert_eq!(failed.body["count"], 1);
    assert_eq!(failed.body["tasks"][0]["status"], "EXECUTE_FAIL");

    let unknown = vbs
        .send(Method::POST, &v2(&format!("/backuppolicy/{UNKNOWN_ID}/action")), None)
        .await;
    assert_vbs_error(&unknown, 404, "AutoBackup.0205");
}

#[tokio::test]
async fn a_volume_still_backing_up_is_skipped() {
    let vbs = start().await;
    let policy = vbs.create_policy("nightly").await;
    vbs.associate(&policy, &[VOL_10, VOL_20]).await;
    vbs.create_backup(VOL_10, "manual").await;
    let execute = v2(&format!("/backuppolicy/{policy}/action"));
    assert_eq!(vbs.send(Method::POST, &execute, None).await.status, 204);

    let skipped = vbs.tasks(&policy, "?status=SKIP").await;
    assert_eq!(skipped.body["count"], 1);
    let task = &skipped.body["tasks"][0];
    assert_eq!(task["resource_id"], VOL_10);
    assert!(task.get("vbs_job_id").is_none());
    assert!(task["finished_at"].is_string());
    let waiting = vbs.tasks(&policy, "?status=WAITING").await;
    assert_eq!(waiting.body["tasks"][0]["resource_id"], VOL_20);
}

#[tokio::test]
async fn task_lists_sort_page_and_filter() {
    let vbs = start().await;
    let policy = vbs.create_policy("nightly").await;
    vbs.associate(&policy, &[VOL_10, VOL_20, VOL_40]).await;
    let execute = v2(&format!("/backuppolicy/{policy}/action"));
    for _ in 0..3 {
        assert_eq!(vbs.send(Method::POST, &execute, None).await.status, 204);
        vbs.step(3);
    }
    let ids = |answer: &Answer| -> Vec<String> {
        answer.body["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| text(&t["job_id"]))
            .collect()
    };
    let newest_first = vbs.tasks(&policy, "").await;
    assert_eq!(newest_first.body["count"], 9);
    let desc = ids(&newest_first);
    let created: Vec<String> = newest_first.body["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| text(&t["created_at"]))
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]));
    let asc = ids(&vbs.tasks(&policy, "?sort_order=asc&sort_key=created_at").await);
    let mut reversed = desc.clone();
    reversed.reverse();
    assert_eq!(asc, reversed);

    let page = vbs.tasks(&policy, "?limit=4").await;
    assert_eq!(page.body["count"], 9);
    assert_eq!(ids(&page), desc[..4]);
    let after = vbs.tasks(&policy, &format!("?limit=4&marker={}", desc[3])).await;
    assert_eq!(ids(&after), desc[4..8]);
    let offset = vbs.tasks(&policy, "?offset=7").await;
    assert_eq!(ids(&offset), desc[7..]);
    let one = vbs.tasks(&policy, &format!("?job_id={}", desc[5])).await;
    assert_eq!(one.body["count"], 1);
    assert_eq!(ids(&one), [desc[5].clone()]);

    for query in [
        "?sort_order=up",
        "?sort_key=name",
        "?limit=0",
        "?limit=x",
        "?offset=-1",
        "?marker=nope",
    ] {
        let answer = vbs.tasks(&policy, query).await;
        assert_vbs_error(&answer, 400, "AutoBackup.0008");
    }
    let unknown = vbs.tasks(UNKNOWN_ID, "").await;
    assert_vbs_error(&unknown, 404, "AutoBackup.0205");
}

// ------------------------------------------------------------- test hooks

#[tokio::test]
async fn every_api_request_is_recorded_in_order() {
    let vbs = start().await;
    vbs.get(&v2("/backups?limit=5")).await;
    let body = json!({"backup": {"volume_id": VOL_10, "name": "recorded"}});
    vbs.http
        .post(format!("{}{}", vbs.sim.url(), v2("/cloudbackups")))
        .header("X-Auth-Token", "token-123")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("sent");
    vbs.get("/simulator/volumes").await;
    vbs.get("/nowhere").await;

    let requests = vbs.sim.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, v2("/backups"));
    assert_eq!(requests[0].query.as_deref(), Some("limit=5"));
    assert_eq!(requests[0].body, "");
    let create = &requests[1];
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, v2("/cloudbackups"));
    assert_eq!(create.query, None);
    assert_eq!(serde_json::from_str::<Value>(&create.body).expect("JSON"), body);
    let header = |name: &str| create.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(header("x-auth-token"), Some("token-123"));
    assert_eq!(header("content-type"), Some("application/json"));
    assert_eq!(header("host"), Some(vbs.sim.local_addr().to_string().as_str()));
    assert_eq!(requests[2].path, "/nowhere");

    vbs.sim.clear_requests();
    assert!(vbs.sim.requests().is_empty());
}

#[tokio::test]
async fn injected_errors_answer_the_next_requests_then_stop() {
    let vbs = start().await;
    vbs.sim.inject_http_errors(503, 2);
    for _ in 0..2 {
        let answer = vbs.get(&v2("/backups")).await;
        assert_vbs_error(&answer, 503, "VBS.SIMULATED");
        assert_eq!(answer.body["error"]["message"], "simulated outage");
        assert_eq!(answer.headers.get("retry-after").map(|v| v.as_bytes()), Some(&b"1"[..]));
    }
    // Admin routes are not part of the outage.
    vbs.sim.inject_http_errors(500, 1);
    assert_eq!(vbs.get("/simulator/volumes").await.status, 200);
    let create = vbs
        .post(
            &v2("/cloudbackups"),
            json!({"backup": {"volume_id": VOL_10, "name": "x"}}),
        )
        .await;
    assert_vbs_error(&create, 500, "VBS.SIMULATED");
    assert_eq!(vbs.get(&v2("/backups")).await.status, 200);
    // Nothing was created by the refused request.
    assert_eq!(vbs.get(&v2("/backups")).await.body["backups"], json!([]));

    vbs.sim.inject_http_errors(429, 1);
    let throttled = vbs.get(&v2("/backups")).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.body["error_code"], "APIGW.0308");
    assert!(throttled.body["error_msg"].is_string());
    assert_eq!(vbs.sim.requests().len(), 6);
}

#[tokio::test]
async fn unknown_apis_answer_like_the_api_gateway() {
    let vbs = start().await;
    for (method, path) in [
        (Method::GET, "/v2/whatever".to_owned()),
        (Method::GET, v2("/cloudbackups")),
        (Method::PATCH, v2("/backups")),
        (Method::PUT, v2("/backuppolicy/x/tags/action")),
    ] {
        let answer = vbs.send(method.clone(), &path, None).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text);
        assert_eq!(answer.body["error_code"], "APIGW.0101");
        assert_eq!(
            answer.body["error_msg"],
            "The API does not exist or has not been published in the environment"
        );
        assert!(is_job_id(&text(&answer.body["request_id"])));
    }
}

#[tokio::test]
async fn admin_routes_steer_the_simulator() {
    let vbs = start().await;
    let (job_id, backup_id) = vbs.create_backup(VOL_10, "steered").await;
    let failed = vbs
        .post(
            &format!("/simulator/jobs/{job_id}/fail"),
            json!({"fail_reason": "operator says no"}),
        )
        .await;
    assert_eq!(failed.status, 200, "{}", failed.text);
    let advanced = vbs.send(Method::POST, "/simulator/clock/advance?seconds=3", None).await;
    assert_eq!(advanced.status, 200, "{}", advanced.text);
    assert_time(&advanced.body["now"], 3, true);
    let job = vbs.job(&job_id).await;
    assert_eq!(job["status"], "FAIL");
    assert_eq!(job["error_code"], "VolumeBackup.0064");
    assert_eq!(job["fail_reason"], "operator says no");
    assert_eq!(vbs.backup(&backup_id).await["status"], "error");

    let finished = vbs
        .send(Method::POST, &format!("/simulator/jobs/{job_id}/fail"), None)
        .await;
    assert_eq!(finished.status, 404);
    let bad_seconds = vbs
        .send(Method::POST, "/simulator/clock/advance?seconds=-1", None)
        .await;
    assert_eq!(bad_seconds.status, 400);

    let volumes = vbs.get("/simulator/volumes").await;
    assert_eq!(volumes.status, 200);
    assert_eq!(
        volumes.body["volumes"][3],
        json!({"id": VOL_5, "name": "scratch-small", "size": 5, "status": "available"})
    );
    assert!(vbs.sim.requests().iter().all(|r| !r.path.starts_with("/simulator")));
}

#[tokio::test]
async fn admin_routes_show_the_request_log_and_inject_faults() {
    let vbs = start().await;
    vbs.get("/v2/p1/backups").await;
    let log = vbs.get("/simulator/requests").await;
    assert_eq!(log.status, 200, "{}", log.text);
    assert_eq!(
        log.body["requests"],
        json!([{"method": "GET", "path": "/v2/p1/backups", "query": null}])
    );
    assert_eq!(vbs.send(Method::DELETE, "/simulator/requests", None).await.status, 204);
    assert_eq!(vbs.get("/simulator/requests").await.body["requests"], json!([]));

    let errors = vbs
        .send(Method::POST, "/simulator/faults/errors?count=1&status=503", None)
        .await;
    assert_eq!(errors.status, 204, "{}", errors.text);
    assert_eq!(vbs.get("/v2/p1/backups").await.status, 503);
    assert_eq!(vbs.get("/v2/p1/backups").await.status, 200);

    let delay = vbs
        .send(Method::POST, "/simulator/faults/delay?count=1&seconds=0.3", None)
        .await;
    assert_eq!(delay.status, 204, "{}", delay.text);
    let started = std::time::Instant::now();
    assert_eq!(vbs.get("/v2/p1/backups").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let bad = vbs.send(Method::POST, "/simulator/faults/delay?count=x", None).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn the_auto_clock_moves_by_itself() {
    let mut config = SimulatorConfig::demo();
    assert_eq!(config.clock, ClockMode::Auto);
    config.job_timing = JobTiming {
        init: Duration::ZERO,
        running: Duration::ZERO,
    };
    let vbs = start_with(config).await;
    let (job_id, backup_id) = vbs.create_backup(VOL_10, "instant").await;
    assert_eq!(vbs.job(&job_id).await["status"], "SUCCESS");
    assert_eq!(vbs.backup(&backup_id).await["status"], "available");
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let vbs = start().await;
    assert_eq!(vbs.get(&v2("/backups")).await.status, 200);
    vbs.sim.shutdown();
    let url = format!("{}{}", vbs.sim.url(), v2("/backups"));
    let mut refused = false;
    for _ in 0..200 {
        let fresh = reqwest::Client::new();
        if fresh.get(&url).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the simulator still answers after shutdown");
}

#[test]
fn configs_and_default_volumes() {
    let volumes = SimulatorConfig::default_volumes();
    let summary: Vec<(u64, &str)> = volumes.iter().map(|v| (v.size_gb, v.status.as_str())).collect();
    assert_eq!(
        summary,
        [(10, "available"), (20, "available"), (40, "in-use"), (5, "available")]
    );
    assert!(volumes.iter().zip(DEFAULT_VOLUME_IDS).all(|(v, id)| v.id == id));
    let testing = SimulatorConfig::for_testing();
    assert_eq!(testing.clock, ClockMode::Manual);
    assert_eq!(testing.job_timing.running, Duration::from_secs(2));
    let demo = SimulatorConfig::demo();
    assert_eq!(demo.job_timing.init, Duration::from_secs(1));
    assert_eq!(demo.job_timing.running, Duration::from_secs(4));
    let spec: VolumeSpec = "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a09:15".parse().expect("valid");
    assert_eq!(spec.name, "volume-6f1a8c52");
    let table = vbs_simulator::describe_volumes(&volumes);
    assert!(table.contains(VOL_40) && table.contains("in-use"));
}

// ------------------------------------------------- fidelity to the reference

#[tokio::test]
async fn native_create_honours_force_and_knows_its_snapshots() {
    let vbs = start().await;
    let snapshot = "2bb856e1-b3d8-4432-a858-09e4ce939389";
    let native =
        |fields: Value| json!({ "backup": merged(json!({"volume_id": VOL_40, "snapshot_id": snapshot}), fields) });
    let attached = vbs.post(&v2("/backups"), native(json!({}))).await;
    assert_bad_request(&attached, json!("VolumeBackup.0012"));
    let unknown = vbs
        .post(
            &v2("/backups"),
            native(json!({"snapshot_id": UNKNOWN_ID, "force": true})),
        )
        .await;
    assert_bad_request(&unknown, json!("VolumeBackup.0020"));
    let text_incremental = vbs
        .post(&v2("/backups"), native(json!({"incremental": "true", "force": true})))
        .await;
    assert_bad_request(&text_incremental, json!("VolumeBackup.0002"));
    let forced = vbs
        .post(&v2("/backups"), native(json!({"force": true, "incremental": false})))
        .await;
    assert_eq!(forced.status, 202, "{}", forced.text);
}

#[tokio::test]
async fn an_empty_restore_body_is_volume_backup_0210() {
    let vbs = start().await;
    let backup_id = vbs.available_backup(VOL_10, "to-restore").await;
    let answer = vbs
        .send_raw(
            Method::POST,
            &v2(&format!("/cloudbackups/{backup_id}/restore")),
            Some(String::new()),
        )
        .await;
    assert_vbs_error(&answer, 400, "VolumeBackup.0210");
}

#[tokio::test]
async fn bodies_over_12_mb_get_413_with_a_json_error() {
    let vbs = start().await;
    let huge = format!("{{\"backup\": {{\"name\": \"{}\"}}}}", "x".repeat(12 * 1024 * 1024 + 1));
    let answer = vbs.send_raw(Method::POST, &v2("/cloudbackups"), Some(huge)).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.body["error_code"], "APIGW.0201", "{}", answer.text);
    let below = format!("{{\"backup\": {{\"name\": \"{}\"}}}}", "x".repeat(3 * 1024 * 1024));
    let answer = vbs.send_raw(Method::POST, &v2("/cloudbackups"), Some(below)).await;
    assert_eq!(answer.status, 400, "under the limit the body is read and judged");
}

// ---------------------------------------------------------- tags and shares

#[tokio::test]
async fn policy_tags_answer_with_the_status_codes_clients_expect() {
    let vbs = start().await;
    let policy_id = vbs.create_policy("tagged").await;
    let tags = v2(&format!("/backuppolicy/{policy_id}/tags"));
    let added = vbs.post(&tags, json!({"tag": {"key": "env", "value": "prod"}})).await;
    assert_eq!(added.status, 204, "{}", added.text);
    let batch = vbs
        .post(
            &format!("{tags}/action"),
            json!({"action": "update", "tags": [{"key": "env", "value": "dev"}, {"key": "team", "value": "ops"}]}),
        )
        .await;
    assert_eq!(batch.status, 204, "{}", batch.text);
    let listed = vbs.get(&tags).await;
    assert_eq!(
        listed.body,
        json!({"tags": [{"key": "env", "value": "dev"}, {"key": "team", "value": "ops"}]})
    );
    assert_eq!(vbs.delete(&format!("{tags}/team")).await.status, 204);
    assert_eq!(
        vbs.post(&tags, json!({"tag": {"key": "action", "value": ""}}))
            .await
            .status,
        204
    );
    assert_eq!(vbs.delete(&format!("{tags}/action")).await.status, 204);
    assert_eq!(vbs.get(&tags).await.body["tags"].as_array().map(Vec::len), Some(1));
    let bad = vbs.post(&tags, json!({"tag": {"key": "a b", "value": ""}})).await;
    assert_vbs_error(&bad, 400, "AutoBackup.0221");
    let missing = vbs.get(&v2(&format!("/backuppolicy/{UNKNOWN_ID}/tags"))).await;
    assert_vbs_error(&missing, 404, "AutoBackup.0205");

    let search = v2("/backuppolicy/resource_instances/action");
    let strings = vbs
        .post(
            &search,
            json!({"action": "filter", "tags": [{"key": "env", "values": ["dev"]}], "limit": "10", "offset": "0"}),
        )
        .await;
    assert_eq!(strings.status, 200, "{}", strings.text);
    assert_eq!(strings.body["total_count"], 1);
    assert_eq!(strings.body["resources"][0]["resource_id"], policy_id);
    assert_eq!(strings.body["resources"][0]["resource_detail"], Value::Null);
    let count = vbs
        .post(
            &search,
            json!({"action": "count", "not_tags_any": [{"key": "env", "values": []}]}),
        )
        .await;
    assert_eq!(count.body, json!({"total_count": 0}));
    let wrong = vbs.post(&search, json!({"action": "filter", "limit": "ten"})).await;
    assert_vbs_error(&wrong, 400, "AutoBackup.0221");
}

#[tokio::test]
async fn shares_make_a_backup_visible_to_the_target_project() {
    let vbs = start().await;
    let backup_id = vbs.available_backup(VOL_10, "shared").await;
    let made = vbs
        .post(
            &v2("/os-vendor-backup-sharing"),
            json!({"shared": {"backup_id": backup_id, "to_project_ids": [OTHER_PROJECT]}}),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text);
    let share_id = text(&made.body["shared"][0]["id"]);
    assert_time(&made.body["shared"][0]["created_at"], 6, false);

    let theirs = vbs.get(&format!("/v2/{OTHER_PROJECT}/backups")).await;
    assert_eq!(theirs.body["backups"][0]["id"], backup_id);
    let to_me = vbs
        .get(&format!(
            "/v2/{OTHER_PROJECT}/os-vendor-backup-sharing/detail?share_to_me=true"
        ))
        .await;
    assert_eq!(to_me.body["shared"][0]["backup"]["id"], backup_id);
    let one = vbs.get(&v2(&format!("/os-vendor-backup-sharing/{share_id}"))).await;
    assert_eq!(one.body["shared"]["to_project_id"], OTHER_PROJECT);

    let stopped = vbs
        .delete(&v2(&format!("/os-vendor-backup-sharing/{backup_id}?is_backup_id=true")))
        .await;
    assert_eq!(stopped.status, 200, "{}", stopped.text);
    assert_eq!(
        vbs.get(&format!("/v2/{OTHER_PROJECT}/backups")).await.body["backups"],
        json!([])
    );
    let again = vbs.get(&v2(&format!("/os-vendor-backup-sharing/{share_id}"))).await;
    assert_eq!(again.status, 404);
}
