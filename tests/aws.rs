//! End-to-end tests of the AWS path: job definitions, the trigger, submit, backfills and array
//! jobs, against moto's server (Batch, SNS, SQS, IAM, EC2; `common::moto`) and SeaweedFS (S3;
//! `common::seaweed`), both started by this test binary on free ports of 127.0.0.1.
//!
//! moto's Batch records jobs without running them (and marks them SUCCEEDED at once), so the
//! tests run each submitted job themselves: `parqour run` with the command and environment Batch
//! would give it (`Ref::manifest` replaced by the job's parameter, `AWS_BATCH_JOB_ID`,
//! `AWS_BATCH_JOB_ATTEMPT`, `AWS_BATCH_JOB_ARRAY_INDEX`).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::moto::{self, QUEUE, emulator, jobs};
use common::seaweed::{self, KEY, SECRET, store};
use common::text;
use parqour::avro::codec::Codec;
use parqour::cli::{EXIT_BAD_INPUT, EXIT_CONFIG, EXIT_INTERNAL, EXIT_RETRYABLE, EXIT_USAGE};
use serde_json::{Value, json};

const DEFINITION: &str = "parqour-fargate";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Both servers up, the Fargate job definition registered.
fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        seaweed::server();
        let out = emulator(
            &moto::server().endpoint,
            &[
                "register",
                root()
                    .join("job-definitions/fargate.json")
                    .to_str()
                    .unwrap(),
            ],
        );
        assert_eq!(out["jobDefinitionName"], DEFINITION);
    });
}

/// `parqour ARGS` with the environment of the trigger Lambda or an operator's shell: S3 on
/// SeaweedFS, Batch on moto, the layout of `s3://raw/{data_type}/{yyyy}/{MM}/{dd}/{HH}/` ->
/// `s3://lake/{data_type}`.
fn parqour(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    setup();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parqour"));
    cmd.args(args)
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &seaweed::server().endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ENDPOINT_URL_BATCH", &moto::server().endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PARQOUR_LOG", "warn")
        .env("PARQOUR_JOB_QUEUE", QUEUE)
        .env("PARQOUR_JOB_DEFINITION", DEFINITION)
        .env("PARQOUR_TABLE", "s3://lake/{data_type}")
        .env(
            "PARQOUR_RAW_PREFIX",
            "s3://raw/{data_type}/{yyyy}/{MM}/{dd}/{HH}/",
        )
        .env_remove("AWS_BATCH_JOB_ID")
        .env_remove("AWS_BATCH_JOB_ATTEMPT")
        .env_remove("AWS_BATCH_JOB_ARRAY_INDEX")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Uploads `n` demo events as an Avro object.
fn upload_events(dir: &Path, key: &str, first: u64, n: u64) {
    let local = dir.join(key.replace('/', "_"));
    let f = std::fs::File::create(&local).unwrap();
    parqour::demo::write_events(std::io::BufWriter::new(f), Codec::Snappy, first, n, 5).unwrap();
    seaweed::upload(&local, "raw", key);
}

fn get_json(bucket: &str, key: &str) -> Value {
    use object_store::ObjectStoreExt;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bytes = rt
        .block_on(async {
            store(bucket)
                .get(&key.into())
                .await
                .unwrap_or_else(|e| panic!("s3://{bucket}/{key}: {e}"))
                .bytes()
                .await
        })
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn jobs_named(prefix: &str) -> Vec<Value> {
    jobs()
        .into_iter()
        .filter(|j| j["jobName"].as_str().unwrap().starts_with(prefix))
        .collect()
}

/// The container command of a job as Batch runs it: `Ref::NAME` replaced by the parameters.
fn command_of(job: &Value) -> Vec<String> {
    job["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| {
            let mut arg = arg.as_str().unwrap().to_string();
            for (name, value) in job["parameters"].as_object().unwrap() {
                arg = arg.replace(&format!("Ref::{name}"), value.as_str().unwrap());
            }
            arg
        })
        .collect()
}

/// Runs a job (or one child of an array job) the way Batch would.
fn run_job(job: &Value, array_index: Option<usize>) -> Output {
    let args = command_of(job);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = job["jobId"].as_str().unwrap();
    let child_id;
    let mut env = vec![("AWS_BATCH_JOB_ATTEMPT", "1")];
    let index;
    match array_index {
        Some(i) => {
            child_id = format!("{id}:{i}");
            index = i.to_string();
            env.push(("AWS_BATCH_JOB_ID", &child_id));
            env.push(("AWS_BATCH_JOB_ARRAY_INDEX", &index));
        }
        None => env.push(("AWS_BATCH_JOB_ID", id)),
    }
    parqour(&args, &env, None)
}

fn publish(topic: &str, message: &Value, dir: &Path) -> Value {
    let file = dir.join(format!("{topic}.json"));
    std::fs::write(&file, message.to_string()).unwrap();
    emulator(
        &moto::server().endpoint,
        &["publish", topic, file.to_str().unwrap()],
    )
}

/// What Batch does on a job's exit, by the definition's `evaluateOnExit`: the first entry whose
/// patterns match (exact, or a prefix before a final `*`) decides; none matching means retry.
fn batch_action(rules: &[Value], exit_code: Option<u8>, status_reason: &str) -> String {
    let matches = |pattern: Option<&str>, value: &str| match pattern {
        None => true,
        Some(p) => match p.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => value == p,
        },
    };
    for rule in rules {
        let on_exit = rule["onExitCode"].as_str();
        let code_ok = match (on_exit, exit_code) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(p), Some(c)) => matches(Some(p), &c.to_string()),
        };
        if code_ok
            && matches(rule["onStatusReason"].as_str(), status_reason)
            && matches(rule["onReason"].as_str(), "")
        {
            return rule["action"].as_str().unwrap().to_ascii_uppercase();
        }
    }
    "RETRY".into()
}

fn check_retry_rules(what: &str, rules: &[Value]) {
    assert!(
        rules.len() <= 5,
        "{what}: Batch takes at most 5 evaluateOnExit entries"
    );
    for rule in rules {
        if let Some(p) = rule["onExitCode"].as_str() {
            let digits = p.strip_suffix('*').unwrap_or(p);
            assert!(
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
                "{what}: onExitCode `{p}`: digits and an optional final `*`"
            );
        }
    }
    assert_eq!(
        batch_action(
            rules,
            Some(EXIT_RETRYABLE),
            "Essential container in task exited"
        ),
        "RETRY",
        "{what}: exit {EXIT_RETRYABLE} (retryable) must be retried"
    );
    for code in [EXIT_USAGE, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_CONFIG] {
        assert_eq!(
            batch_action(rules, Some(code), "Essential container in task exited"),
            "EXIT",
            "{what}: exit {code} must not be retried"
        );
    }
    assert_eq!(
        batch_action(rules, None, "Host EC2 (instance i-0abc) terminated."),
        "RETRY",
        "{what}: a lost host must be retried"
    );
}

#[test]
fn job_definitions_map_the_exit_codes_and_register() {
    setup();
    for file in ["ec2.json", "fargate.json"] {
        let path = root().join("job-definitions").join(file);
        let definition: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let container = &definition["containerProperties"];
        assert_eq!(
            container["command"],
            json!(["run", "--manifest", "Ref::manifest"])
        );
        assert_eq!(container["logConfiguration"]["logDriver"], "awslogs");
        assert!(
            definition["timeout"]["attemptDurationSeconds"]
                .as_u64()
                .unwrap()
                >= 60
        );
        assert!(definition["retryStrategy"]["attempts"].as_u64().unwrap() >= 2);
        let rules = definition["retryStrategy"]["evaluateOnExit"]
            .as_array()
            .unwrap();
        check_retry_rules(file, rules);
        // The same JSON `aws batch register-job-definition --cli-input-json` takes: botocore
        // validates every field, then moto registers it.
        let out = emulator(
            &moto::server().endpoint,
            &["register", path.to_str().unwrap()],
        );
        assert_eq!(out["jobDefinitionName"], definition["jobDefinitionName"]);
        assert!(out["revision"].as_u64().unwrap() >= 1, "{out}");
    }
    // The Terraform module's job definition retries the same way.
    let tf =
        std::fs::read_to_string(root().join("deploy/terraform/modules/event_processor/batch.tf"))
            .unwrap();
    let rules: Vec<Value> = tf
        .split("evaluate_on_exit {")
        .skip(1)
        .map(|block| {
            let block = &block[..block.find('}').unwrap()];
            let mut rule = serde_json::Map::new();
            for line in block.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    let key = match k.trim() {
                        "action" => "action",
                        "on_exit_code" => "onExitCode",
                        "on_status_reason" => "onStatusReason",
                        "on_reason" => "onReason",
                        other => panic!("unexpected `{other}` in evaluate_on_exit"),
                    };
                    rule.insert(key.into(), json!(v.trim().trim_matches('"')));
                }
            }
            Value::Object(rule)
        })
        .collect();
    assert!(!rules.is_empty(), "batch.tf has evaluate_on_exit blocks");
    check_retry_rules("batch.tf", &rules);
}

#[test]
fn sns_message_to_trigger_to_job_to_committed_partition() {
    let tmp = tempfile::tempdir().unwrap();
    upload_events(tmp.path(), "events/2026/11/26/03/a.avro", 0, 3000);
    upload_events(tmp.path(), "events/2026/11/26/03/b.avro", 3000, 2000);
    let message = json!({"event": "partition_closed", "version": 1, "data_type": "events",
        "partition": {"dt": "2026-11-26", "hour": "03"},
        "raw_prefix": "s3://raw/events/2026/11/26/03/"});
    let published = publish("partition-closed", &message, tmp.path());

    // The Lambda SNS event -> a manifest in S3 and one job.
    let event = tmp.path().join("sns-event.json");
    std::fs::write(&event, published["sns_event"].to_string()).unwrap();
    let out = ok(parqour(
        &["trigger", "--event", event.to_str().unwrap()],
        &[],
        None,
    ));
    let manifest_url = "s3://lake/events/_manifests/dt=2026-11-26/hour=03/manifest.json";
    assert!(
        out.contains("submitted events-dt_2026-11-26-hour_03-"),
        "{out}"
    );
    assert!(out.contains(manifest_url), "{out}");
    let manifest = get_json(
        "lake",
        "events/_manifests/dt=2026-11-26/hour=03/manifest.json",
    );
    assert_eq!(manifest["table"], "s3://lake/events");
    assert_eq!(
        manifest["partition"],
        json!({"dt": "2026-11-26", "hour": "03"})
    );
    let inputs = manifest["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    assert_eq!(inputs[0]["url"], "s3://raw/events/2026/11/26/03/a.avro");
    assert!(inputs[0]["size"].as_u64().unwrap() > 0 && inputs[0]["etag"].is_string());
    let submitted = jobs_named("events-");
    assert_eq!(submitted.len(), 1, "{submitted:?}");
    let job = &submitted[0];
    assert_eq!(job["parameters"], json!({"manifest": manifest_url}));
    assert_eq!(
        command_of(job),
        ["run", "--manifest", manifest_url],
        "the job definition's command with the parameter"
    );

    // The same message again, as the SQS event of a queue subscribed to the topic, on stdin:
    // nothing submitted.
    let out = ok(parqour(
        &["trigger", "--event", "-"],
        &[],
        Some(&published["sqs_event"].to_string()),
    ));
    assert!(out.contains("not submitted"), "{out}");
    assert_eq!(jobs_named("events-").len(), 1);

    // The job, as Batch runs it, converts the partition.
    let out = ok(run_job(job, None));
    assert!(
        out.contains("committed s3://lake/events/dt=2026-11-26/hour=03"),
        "{out}"
    );
    let marker = get_json("lake", "events/dt=2026-11-26/hour=03/_SUCCESS");
    assert_eq!(marker["records_out"], 5000);
    assert_eq!(marker["job"]["job_id"], job["jobId"]);
    assert_eq!(marker["job"]["attempt"], 1);
    assert_eq!(marker["manifest_url"], manifest_url);

    // After the commit a duplicate finds the marker.
    let out = ok(parqour(
        &["trigger", "--event", "-"],
        &[],
        Some(&published["envelope"].to_string()),
    ));
    assert!(out.contains("already committed"), "{out}");
    assert_eq!(jobs_named("events-").len(), 1);

    // Late data: the next message lists three objects, a new manifest and a new job.
    upload_events(tmp.path(), "events/2026/11/26/03/c.avro", 5000, 1000);
    let out = ok(parqour(
        &["trigger", "--event", "-"],
        &[],
        Some(&message.to_string()),
    ));
    assert!(out.contains("submitted"), "{out}");
    let submitted = jobs_named("events-");
    assert_eq!(submitted.len(), 2, "{submitted:?}");
    assert_ne!(submitted[0]["jobName"], submitted[1]["jobName"]);
    ok(run_job(&submitted[1], None));
    let marker = get_json("lake", "events/dt=2026-11-26/hour=03/_SUCCESS");
    assert_eq!(marker["records_out"], 6000);

    // `parqour submit` on the manifest: committed, so nothing.
    let out = ok(parqour(&["submit", "--manifest", manifest_url], &[], None));
    assert!(out.contains("already committed"), "{out}");
    assert_eq!(jobs_named("events-").len(), 2);

    // A job queue that does not exist: configuration (78), said in one line, not with the
    // SDK's dump of the raw response.
    let o = parqour(
        &["submit", "--force", "--manifest", manifest_url],
        &[("PARQOUR_JOB_QUEUE", "no-such-queue")],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(
        err.contains("SubmitJob: ClientException: ") && err.contains("no-such-queue"),
        "{err}"
    );
    assert!(
        !err.contains("HeaderValue") && err.lines().count() < 3,
        "{err}"
    );

    // Messages that cannot work are invalid (65, not retried), and nothing is submitted: a
    // raw prefix or a manifest on this host's disk (the job runs elsewhere), a partition value
    // too long for S3's keys (S3 refused the manifest's key with a client error: exit 75,
    // retried for ever).
    let local = tmp.path().join("local/events");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::copy(
        tmp.path().join("events_2026_11_26_03_a.avro"),
        local.join("a.avro"),
    )
    .unwrap();
    let closed = |fields: Value| {
        let mut m = json!({"event": "partition_closed", "version": 1, "data_type": "events"});
        m.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        m
    };
    // (A manifest root far longer than the table's path: the manifest's own key is too long.)
    let long_root = format!("s3://lake/{}", "m".repeat(1000));
    for (bad, env, why) in [
        (
            closed(json!({"partition": {"dt": "2026-11-27"},
                "raw_prefix": format!("{}/", local.display())})),
            None,
            "`raw_prefix` must be an s3:// URL",
        ),
        (
            closed(json!({"manifest": format!("file://{}/m.json", local.display())})),
            None,
            "`manifest` must be an s3:// URL",
        ),
        (
            closed(json!({"partition": {"dt": "x".repeat(2000)},
                "raw_prefix": "s3://raw/events/2026/11/26/03/"})),
            None,
            "S3 takes 1024",
        ),
        (
            closed(json!({"partition": {"dt": "2026-11-27"},
                "raw_prefix": "s3://raw/events/2026/11/26/03/"})),
            Some(("PARQOUR_MANIFEST_ROOT", long_root.as_str())),
            "the manifest's key would be 1028 bytes long (S3 takes 1024)",
        ),
    ] {
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        let o = parqour(&["trigger", "--event", "-"], &env, Some(&bad.to_string()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(65), "{bad}: {text}");
        assert!(text.contains(why), "{bad}: {text}");
    }
    assert_eq!(jobs_named("events-").len(), 2);
}

#[test]
fn s3_notifications_through_sns_close_a_hive_style_raw_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = [
        (
            "PARQOUR_RAW_PREFIX",
            "s3://raw/{data_type}/dt={yyyy}-{MM}-{dd}/hour={HH}/",
        ),
        ("PARQOUR_DATA_TYPE", "views"),
    ];
    upload_events(tmp.path(), "views/dt=2026-11-27/hour=05/x.avro", 0, 1500);
    // S3 URL-encodes keys in notifications (`=` is `%3D`).
    let s3_event = |name: &str, key: &str| {
        json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
            "awsRegion": "us-east-1", "eventTime": "2026-11-27T06:00:01.000Z", "eventName": name,
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "raw", "arn": "arn:aws:s3:::raw"},
                   "object": {"key": key, "size": 0}}}]})
    };
    // Through SNS and an SQS queue, as a queue-fed trigger would get it.
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent",
        "Time": "2026-11-27T06:00:00.000Z", "Bucket": "raw", "RequestId": "r", "HostId": "h"});
    let published = publish("raw-notifications", &test_event, tmp.path());
    let out = ok(parqour(
        &["trigger", "--event", "-"],
        &layout,
        Some(&published["sqs_event"].to_string()),
    ));
    assert!(out.contains("ignored: s3:TestEvent"), "{out}");

    // An Avro object arriving does not close the partition.
    let object = s3_event(
        "ObjectCreated:Put",
        "views/dt%3D2026-11-27/hour%3D05/x.avro",
    );
    let published = publish("raw-notifications", &object, tmp.path());
    let out = ok(parqour(
        &["trigger", "--event", "-"],
        &layout,
        Some(&published["sqs_event"].to_string()),
    ));
    assert!(out.contains("not a `_SUCCESS` object"), "{out}");
    assert!(jobs_named("views-").is_empty());

    let closed = s3_event(
        "ObjectCreated:Put",
        "views/dt%3D2026-11-27/hour%3D05/_SUCCESS",
    );
    let published = publish("raw-notifications", &closed, tmp.path());
    let out = ok(parqour(
        &["trigger", "--event", "-"],
        &layout,
        Some(&published["sqs_event"].to_string()),
    ));
    assert!(
        out.contains("submitted views-dt_2026-11-27-hour_05-"),
        "{out}"
    );
    let submitted = jobs_named("views-");
    assert_eq!(submitted.len(), 1);
    ok(run_job(&submitted[0], None));
    let marker = get_json("lake", "views/dt=2026-11-27/hour=05/_SUCCESS");
    assert_eq!(marker["records_out"], 1500);
    assert_eq!(
        marker["inputs"][0]["url"],
        "s3://raw/views/dt=2026-11-27/hour=05/x.avro"
    );

    // A message for another data type is not this trigger's; an unparseable one fails with 65
    // (the Lambda function reports it and does not retry it).
    let other = json!({"event": "partition_closed", "version": 1, "data_type": "clicks",
        "partition": {"dt": "2026-11-27", "hour": "05"}, "raw_prefix": "s3://raw/clicks/"});
    let out = ok(parqour(
        &["trigger", "--event", "-"],
        &layout,
        Some(&other.to_string()),
    ));
    assert!(out.contains("ignored: data type `clicks`"), "{out}");
    let o = parqour(
        &["trigger", "--event", "-"],
        &layout,
        Some("{\"Type\": \"Notification\", \"Message\": \"{not json\"}"),
    );
    assert_eq!(
        o.status.code(),
        Some(i32::from(EXIT_BAD_INPUT)),
        "{}",
        text(&o)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("invalid message: not JSON"));
    let o = parqour(
        &["trigger", "--event", "-"],
        &layout,
        Some("partition closed!"),
    );
    assert_eq!(
        o.status.code(),
        Some(i32::from(EXIT_BAD_INPUT)),
        "{}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("event: failed (exit 65): invalid message: not JSON")
    );
}

#[test]
fn backfill_submits_one_array_job_whose_children_convert_every_hour() {
    let tmp = tempfile::tempdir().unwrap();
    let hours = ["00", "01", "03"];
    for (i, hour) in hours.iter().enumerate() {
        upload_events(
            tmp.path(),
            &format!("clicks/2026/11/01/{hour}/part.avro"),
            i as u64 * 1000,
            1000 + i as u64,
        );
    }
    let args = [
        "backfill",
        "--data-type",
        "clicks",
        "--from",
        "2026-11-01T00",
        "--to",
        "2026-11-01T04",
    ];
    let out = ok(parqour(&[&args[..], &["--dry-run"]].concat(), &[], None));
    assert!(
        out.contains("4 hour(s) from 2026-11-01T00 to 2026-11-01T04: 3 to convert, 0 already committed, 1 without objects"),
        "{out}"
    );
    assert!(
        out.contains("2026-11-01T02  s3://raw/clicks/2026/11/01/02/  no objects"),
        "{out}"
    );
    assert!(
        out.contains("dry run: would submit clicks-backfill-2026110100-2026110104-"),
        "{out}"
    );
    assert!(
        jobs_named("clicks-").is_empty(),
        "a dry run submits nothing"
    );

    let out = ok(parqour(&args, &[], None));
    assert!(
        out.contains(
            "an array job of 3 over s3://lake/clicks/_manifests/_backfill/2026110100-2026110104-"
        ),
        "{out}"
    );
    let submitted = jobs_named("clicks-");
    assert_eq!(submitted.len(), 1, "{submitted:?}");
    let job = &submitted[0];
    assert_eq!(job["arraySize"], 3);
    let command = command_of(job);
    assert_eq!(command[..2], ["run", "--manifests"]);
    assert_eq!(command[3..], ["--manifest-count", "3"]);

    // The same backfill again finds the job.
    let out = ok(parqour(&args, &[], None));
    assert!(out.contains("not submitted"), "{out}");
    assert_eq!(jobs_named("clicks-").len(), 1);

    // Each child converts its hour.
    for (i, hour) in hours.iter().enumerate() {
        let out = ok(run_job(job, Some(i)));
        assert!(out.contains(&format!("hour={hour}")), "child {i}: {out}");
    }
    for (i, hour) in hours.iter().enumerate() {
        let marker = get_json(
            "lake",
            &format!("clicks/dt=2026-11-01/hour={hour}/_SUCCESS"),
        );
        assert_eq!(marker["records_out"], 1000 + i as u64);
        assert_eq!(
            marker["job"]["job_id"],
            format!("{}:{i}", job["jobId"].as_str().unwrap())
        );
    }
    // A child whose prefix no longer holds what the job was submitted over refuses to guess.
    let prefix = &command[2];
    let o = parqour(
        &["run", "--manifests", prefix, "--manifest-count", "4"],
        &[("AWS_BATCH_JOB_ARRAY_INDEX", "0")],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(i32::from(EXIT_BAD_INPUT)),
        "{}",
        text(&o)
    );

    // Everything committed: a lookback over the same hours converts nothing.
    let out = ok(parqour(&args, &[], None));
    assert!(out.contains("0 to convert, 3 already committed"), "{out}");
    assert!(out.contains("nothing to convert"), "{out}");

    // `parqour submit --manifests` over the backfill's prefix: all committed, nothing submitted.
    let out = ok(parqour(&["submit", "--manifests", prefix], &[], None));
    assert!(out.contains("already committed"), "{out}");
    assert_eq!(jobs_named("clicks-").len(), 1);
}
