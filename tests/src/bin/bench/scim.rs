//! `make bench`'s SCIM rows: the scim function (the release binary, one instance behind a
//! Runtime API emulator, as the create-user rows run theirs) against floors of its own
//! statements under pgbench, on databases seeded alike.
//!
//! * a filter lookup (`userName eq "…"`) in a tenant of 100,000 users (BENCH_SCIM_USERS),
//!   against the token's lookup, the count and the page under pgbench;
//! * a full paged read (`count=100`, every page in turn) of a tenant of 10,000 users
//!   (BENCH_SCIM_PAGED), per page and whole, against the same three statements at every
//!   offset in turn;
//! * SCIM creates beside the admin API's create of the same person, each against its floor;
//! * an identity provider's first sync (BENCH_SCIM_SYNC_USERS creates by
//!   BENCH_SCIM_SYNC_WORKERS workers, one instance each) against the Auth0 double with its
//!   rate limit at BENCH_SCIM_SYNC_RATE calls a second, the workers honouring `Retry-After`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::scim::schema::CORE_USER;
use testkit::harness::{SCIM_USERS_PATH, TestDb, TestStack, create_event, scim_event, seed};
use testkit::runtime_api::Outcome;

use super::{
    ACME_OWNER, BoxError, Emails, Floor, FloorFile, FloorRun, GLOBEX_OWNER, Instance,
    LIST_ID_PREFIX, Owner, Script, Statement, Stats, WARM_UP, WIRE_REQUESTS, Wire, WireCounts,
    app_vars, cpu_ticks, create_statements, doubles_time, floor_statements, fresh_stack,
    management_calls, peak_rss_kib, seed_series, start_relay, take, ticks_per, upstream_of,
};

/// Users in the filter's tenant (Acme) besides the seed's, unless BENCH_SCIM_USERS says.
pub const FILTER_USERS: &str = "100000";
/// Users in the paged read's tenant (Globex) besides the seed's, unless BENCH_SCIM_PAGED says.
pub const PAGED_USERS: &str = "10000";
/// The first sync's creates, the Auth0 double's rate limit (calls a second) and the workers,
/// unless BENCH_SCIM_SYNC_USERS, BENCH_SCIM_SYNC_RATE and BENCH_SCIM_SYNC_WORKERS say.
pub const SYNC_USERS: &str = "1000";
pub const SYNC_RATE: &str = "10";
pub const SYNC_WORKERS: &str = "4";
/// `count` of every list request: a page as identity providers ask for it.
const PAGE_SIZE: u64 = 100;
/// A read's pages are judged in this many bands of consecutive pages (first tenth, …).
const PAGE_BANDS: usize = 10;
/// Targets: a read within this factor of its SELECTs' p50, a SCIM create of the admin API's
/// create's p50, a first sync at this share of the rate limit.
const READ_TARGET: f64 = 1.5;
const CREATE_TARGET: f64 = 1.3;
const SYNC_TARGET: f64 = 0.9;
/// The paged tenant's user g's id is this followed by g in 12 digits.
const PAGED_ID_PREFIX: &str = "d1000000-0000-4000-8000-";
/// The first sync's users' addresses end so.
const SYNC_DOMAIN: &str = "sync.bench.test";

const FILTER_FLOOR: (&str, &str) = (
    "scim_filter_floor.sql",
    include_str!("../../../bench/scim_filter_floor.sql"),
);
const PAGE_FLOOR: (&str, &str) = (
    "scim_page_floor.sql",
    include_str!("../../../bench/scim_page_floor.sql"),
);
const SCIM_CREATE_FLOOR: (&str, &str) = (
    "scim_create_floor.sql",
    include_str!("../../../bench/scim_create_floor.sql"),
);
const ADMIN_CREATE_FLOOR: (&str, &str) = (
    "create_user_no_pages_floor.sql",
    include_str!("../../../bench/create_user_no_pages_floor.sql"),
);

/// The token's lookup, as the SCIM floors write it.
fn find_token() -> Statement {
    (
        "scim_tokens::FIND",
        shared::db::scim_tokens::FIND.to_string(),
        vec![":hash".into()],
    )
}

/// The count and the page of a list, for `matching`, its values as the floor writes them
/// (after the tenant's, from the token's lookup).
fn list_statements(
    matching: &shared::db::user_views::UserMatch,
    values: &[&str],
    offset: &str,
) -> Vec<Statement> {
    use shared::db::user_views;
    let mut params = vec![":token_tenant_id".to_string()];
    params.extend(values.iter().map(|v| v.to_string()));
    let mut page = params.clone();
    page.extend([offset.to_string(), ":count".to_string()]);
    vec![
        (
            "user_views::count_matching_sql",
            user_views::count_matching_sql(matching),
            params,
        ),
        (
            "user_views::matching_page_sql",
            user_views::matching_page_sql(matching),
            page,
        ),
    ]
}

/// The SCIM rows' floors with the statements of shared's each must hold.
pub(super) fn floor_files() -> Vec<FloorFile> {
    use shared::db::user_views::UserMatch;
    let by_email = UserMatch {
        email: Some(String::new()),
        ..UserMatch::default()
    };
    let mut filter = vec![find_token()];
    filter.extend(list_statements(
        &by_email,
        &["('list' || :k || '@bench.test')"],
        ":offset",
    ));
    let mut page = vec![find_token()];
    page.extend(list_statements(&UserMatch::default(), &[], ":offset"));
    let mut scim_create = vec![find_token()];
    scim_create.extend(create_statements(
        "token_",
        "NULL",
        ":token_id::uuid",
        "'ext-' || :n",
        ["NULL", "NULL", "NULL"],
    ));
    let mut admin_create = vec![(
        "users::FIND_CALLER",
        shared::db::users::FIND_CALLER.to_string(),
        vec![":sub".to_string()],
    )];
    admin_create.extend(create_statements(
        "caller_",
        ":caller_id::uuid",
        "NULL",
        "NULL",
        ["NULL", "NULL", "NULL"],
    ));
    [
        (FILTER_FLOOR, filter),
        (PAGE_FLOOR, page),
        (SCIM_CREATE_FLOOR, scim_create),
        (ADMIN_CREATE_FLOOR, admin_create),
    ]
    .into_iter()
    .map(|((file, sql), statements)| FloorFile {
        file,
        sql,
        statements,
    })
    .collect()
}

/// What the SCIM rows run with.
pub(super) struct ScimSettings {
    pub postmaster: u32,
    pub seconds: u64,
    /// Users seeded in the filter's tenant and in the paged read's.
    pub filter_users: i64,
    pub paged_users: i64,
    pub create_user: PathBuf,
    pub scim: PathBuf,
    pub log_level: String,
    pub pgbench: String,
    pub work: PathBuf,
    pub emails: Arc<Emails>,
}

/// The first sync's settings.
pub(super) struct SyncSettings {
    pub users: u64,
    pub rate: u32,
    pub workers: usize,
    pub scim: PathBuf,
    pub log_level: String,
}

/// One kind of request the rows send at one instance.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Filter,
    AdminCreate,
    ScimCreate,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Filter => "filter `userName eq`",
            Kind::AdminCreate => "admin API create",
            Kind::ScimCreate => "SCIM create",
        }
    }

    /// The status of a good answer.
    fn status(self) -> u16 {
        match self {
            Kind::Filter => 200,
            Kind::AdminCreate | Kind::ScimCreate => 201,
        }
    }
}

/// Makes the requests of one kind.
struct Requests<'a> {
    kind: Kind,
    /// The SCIM token of the filter's tenant (Acme).
    token: &'a str,
    /// Users seeded in the filter's tenant: the filter looks them up in turn.
    users: u64,
    next: AtomicU64,
    emails: &'a Emails,
}

/// The person both creates make: a name and an address, no page permissions (SCIM gives
/// none), invited to set a password (no password sent).
fn admin_create_body(email: &str) -> Value {
    json!({
        "email": email,
        "role": "USER",
        "permissions": [],
        "create_employee": true,
        "employee_data": {"firstName": "Nia", "lastName": "Hire"}
    })
}

/// The same person as an identity provider sends it.
fn scim_create_body(email: &str, external_id: &str) -> Value {
    json!({
        "schemas": [CORE_USER],
        "userName": email,
        "name": {"givenName": "Nia", "familyName": "Hire"},
        "emails": [{"value": email, "type": "work", "primary": true}],
        "externalId": external_id,
        "active": true
    })
}

impl Requests<'_> {
    /// The next event, and the `userName` a filter's answer must hold.
    fn next(&self) -> (Value, Option<String>) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.kind {
            Kind::Filter => {
                let email = format!("list{}@bench.test", i % self.users + 1);
                let filter = format!("userName eq \"{email}\"");
                let query = [
                    ("filter", filter.as_str()),
                    ("startIndex", "1"),
                    ("count", "100"),
                ];
                let event = scim_event("GET", SCIM_USERS_PATH, Some(self.token), None, &query);
                (event, Some(email))
            }
            Kind::AdminCreate => {
                let body = admin_create_body(&self.emails.next());
                (create_event(seed::ACME_ADMIN_SUB, &body), None)
            }
            Kind::ScimCreate => {
                let email = self.emails.next();
                let body = scim_create_body(&email, &format!("ext-{i}"));
                let event = scim_event("POST", SCIM_USERS_PATH, Some(self.token), Some(&body), &[]);
                (event, None)
            }
        }
    }
}

/// The JSON body of a Lambda response.
fn body_of(raw: &Value) -> Value {
    raw["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null)
}

/// Requests of `requests`' kind on `instance`, one after another, until `count` were made or
/// `until` passed; with `check`, each answer's content is checked too.
async fn send(
    instance: &Instance,
    requests: &Requests<'_>,
    count: Option<usize>,
    until: Option<Instant>,
    check: bool,
) -> (Vec<Duration>, usize) {
    let kind = requests.kind;
    let (mut latencies, mut errors) = (Vec::new(), 0usize);
    while count.is_none_or(|n| latencies.len() + errors < n)
        && until.is_none_or(|until| Instant::now() < until)
    {
        let (event, user_name) = requests.next();
        let answer = instance
            .call(event, kind.status())
            .await
            .and_then(|(took, raw)| {
                if check && let Some(user_name) = user_name {
                    let body = body_of(&raw);
                    let found = body["Resources"][0]["userName"].as_str();
                    if body["totalResults"] != json!(1) || found != Some(user_name.as_str()) {
                        return Err(format!("unexpected answer {body}"));
                    }
                }
                Ok(took)
            });
        match answer {
            Ok(took) => latencies.push(took),
            Err(err) => {
                if errors == 0 {
                    eprintln!("scim, {}: {err}", kind.name());
                }
                errors += 1;
            }
        }
    }
    (latencies, errors)
}

/// One row: the binary's run, what it sent, and its floor.
pub(super) struct ScimRow {
    name: &'static str,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Management API calls the double counted during the run.
    auth0_calls: usize,
    cpu_ticks: u64,
    peak_rss_kib: u64,
    wire: Wire,
    floor: FloorRun,
    floor_statements: usize,
}

impl ScimRow {
    fn per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn p50(&self) -> f64 {
        Stats::of(&self.latencies).p50
    }

    fn floor_p50(&self) -> f64 {
        Stats::of(&self.floor.latencies).p50
    }
}

impl std::fmt::Display for ScimRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = Stats::of(&self.latencies);
        write!(
            f,
            "scim, {}: {} requests ({} errors) in {:.1} s = {:.0}/s; p50 {:.2} p99 {:.2} ms; \
             floor p50 {:.2} ms ({:.0}/s); {:.2} round trips, {:.2} statements, {:.2} Auth0 \
             calls per request; CPU {:.3} ms/request; peak RSS {:.1} MiB",
            self.name,
            self.requests,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.per_sec(),
            l.p50,
            l.p99,
            self.floor_p50(),
            self.floor.tps,
            self.wire.per_request(self.wire.round_trips),
            self.wire.per_request(self.wire.statements),
            self.auth0_calls as f64 / self.requests.max(1) as f64,
            ticks_per(self.cpu_ticks, self.requests as u64),
            self.peak_rss_kib as f64 / 1024.0,
        )
    }
}

/// The binary's side of a row, before its floor.
struct Measured {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    auth0_calls: usize,
    cpu_ticks: u64,
    peak_rss_kib: u64,
    wire: Wire,
}

/// Where a row's binary runs: the binary, its environment straight and through the relay.
struct Target<'a> {
    binary: &'a std::path::Path,
    function: &'a str,
    vars: &'a HashMap<String, String>,
    relayed: &'a HashMap<String, String>,
    counts: &'a WireCounts,
    stack: &'a TestStack,
}

impl Target<'_> {
    /// What `requests` send (through the relay, after a warm-up), then their run on a fresh
    /// instance for `seconds` after a warm-up.
    async fn measure(&self, requests: &Requests<'_>, seconds: u64) -> Result<Measured, BoxError> {
        let (instance, _) = Instance::start_as(self.binary, self.relayed, self.function).await?;
        let (_, errors) = send(&instance, requests, Some(WARM_UP), None, true).await;
        if errors > 0 {
            return Err(format!("scim, {}: the warm-up failed", requests.kind.name()).into());
        }
        let before = self.counts.read();
        let (counted, _) = send(&instance, requests, Some(WIRE_REQUESTS), None, false).await;
        let after = self.counts.read();
        instance.stop().await;
        let wire = Wire {
            requests: counted.len() as u64,
            round_trips: after.0 - before.0,
            statements: after.1 - before.1,
        };

        let (instance, _) = Instance::start_as(self.binary, self.vars, self.function).await?;
        send(&instance, requests, Some(WARM_UP), None, true).await;
        let calls_before = management_calls(&self.stack.auth0);
        let cpu_before = cpu_ticks(instance.pid);
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let (latencies, errors) = send(&instance, requests, None, Some(until), false).await;
        let elapsed = started.elapsed();
        let cpu = cpu_ticks(instance.pid) - cpu_before;
        let auth0_calls = management_calls(&self.stack.auth0) - calls_before;
        let peak_rss_kib = peak_rss_kib(instance.pid);
        instance.stop().await;
        Ok(Measured {
            requests: latencies.len(),
            errors,
            elapsed,
            latencies,
            auth0_calls,
            cpu_ticks: cpu,
            peak_rss_kib,
            wire,
        })
    }
}

impl Measured {
    fn with_floor(self, name: &'static str, floor: FloorRun, floor_sql: &str) -> ScimRow {
        ScimRow {
            name,
            requests: self.requests,
            errors: self.errors,
            elapsed: self.elapsed,
            latencies: self.latencies,
            auth0_calls: self.auth0_calls,
            cpu_ticks: self.cpu_ticks,
            peak_rss_kib: self.peak_rss_kib,
            wire: self.wire,
            floor,
            floor_statements: floor_statements(floor_sql),
        }
    }
}

/// The full paged read: each page's latency by its place in the read, and whole reads.
pub(super) struct PagedRead {
    /// Every page of every read, as one row (its floor: the page statements at every offset).
    row: ScimRow,
    /// The tenant's users (`totalResults`) and the pages of a read.
    total: u64,
    pages: usize,
    reads: Vec<Duration>,
    /// Per page of a read (0 is `startIndex=1`), its latencies over the reads.
    by_page: Vec<Vec<Duration>>,
    floor_reads: Vec<Duration>,
    floor_by_page: Vec<Vec<Duration>>,
}

impl PagedRead {
    /// Per band of pages (a tenth of the read): its first and last page (from 1), its p50, its
    /// floor's p50.
    fn bands(&self) -> Vec<(usize, usize, f64, f64)> {
        let bands = PAGE_BANDS.min(self.pages).max(1);
        (0..bands)
            .map(|b| {
                let (from, to) = (b * self.pages / bands, (b + 1) * self.pages / bands);
                let gather = |by_page: &[Vec<Duration>]| {
                    let all: Vec<Duration> = by_page[from..to].iter().flatten().copied().collect();
                    Stats::of(&all).p50
                };
                (
                    from + 1,
                    to,
                    gather(&self.by_page),
                    gather(&self.floor_by_page),
                )
            })
            .collect()
    }

    /// The band furthest from its floor: its pages and its ratio.
    fn worst_band(&self) -> (usize, usize, f64) {
        self.bands()
            .into_iter()
            .map(|(from, to, p50, floor)| (from, to, p50 / floor))
            .fold(
                (0, 0, 0.0),
                |worst, band| {
                    if band.2 > worst.2 { band } else { worst }
                },
            )
    }

    fn met(&self) -> bool {
        let (_, _, ratio) = self.worst_band();
        ratio <= READ_TARGET && self.row.p50() <= READ_TARGET * self.row.floor_p50()
    }
}

/// The pages of a read of `total` users.
fn pages_of(total: u64) -> usize {
    total.div_ceil(PAGE_SIZE).max(1) as usize
}

/// One full read with `token`, page after page: each page's latency and the read's. With
/// `check`, each page must hold the users it should.
async fn read_all(
    instance: &Instance,
    token: &str,
    total: u64,
    check: bool,
) -> Result<(Vec<Duration>, Duration), String> {
    let started = Instant::now();
    let mut pages = Vec::with_capacity(pages_of(total));
    for page in 0..pages_of(total) as u64 {
        let start = (page * PAGE_SIZE + 1).to_string();
        let query = [("startIndex", start.as_str()), ("count", "100")];
        let event = scim_event("GET", SCIM_USERS_PATH, Some(token), None, &query);
        let (took, raw) = instance.call(event, 200).await?;
        pages.push(took);
        if check {
            let body = body_of(&raw);
            let expected = PAGE_SIZE.min(total - page * PAGE_SIZE) as usize;
            let resources = body["Resources"].as_array().map_or(0, Vec::len);
            if body["totalResults"] != json!(total) || resources != expected {
                return Err(format!(
                    "page {}: {resources} users of {} (expected {expected} of {total})",
                    page + 1,
                    body["totalResults"]
                ));
            }
        }
    }
    Ok((pages, started.elapsed()))
}

/// The paged read's binary side: one checked read through the relay (what a page sends),
/// then whole reads for `seconds` (at least one) on a fresh instance after a checked one.
async fn measure_paged(
    target: &Target<'_>,
    token: &str,
    total: u64,
    seconds: u64,
) -> Result<(Measured, Vec<Duration>, Vec<Vec<Duration>>), BoxError> {
    let pages = pages_of(total);
    let (instance, _) = Instance::start_as(target.binary, target.relayed, target.function).await?;
    read_all(&instance, token, total, true).await?;
    let before = target.counts.read();
    read_all(&instance, token, total, false).await?;
    let after = target.counts.read();
    instance.stop().await;
    let wire = Wire {
        requests: pages as u64,
        round_trips: after.0 - before.0,
        statements: after.1 - before.1,
    };

    let (instance, _) = Instance::start_as(target.binary, target.vars, target.function).await?;
    read_all(&instance, token, total, true).await?;
    let cpu_before = cpu_ticks(instance.pid);
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let (mut reads, mut by_page) = (Vec::new(), vec![Vec::new(); pages]);
    let mut errors = 0;
    while reads.is_empty() || Instant::now() < until {
        match read_all(&instance, token, total, false).await {
            Ok((latencies, read)) => {
                reads.push(read);
                for (page, took) in latencies.into_iter().enumerate() {
                    by_page[page].push(took);
                }
            }
            Err(err) => {
                if errors == 0 {
                    eprintln!("scim, paged read: {err}");
                }
                errors += 1;
                if errors > 3 {
                    break;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_ticks(instance.pid) - cpu_before;
    let peak_rss_kib = peak_rss_kib(instance.pid);
    instance.stop().await;
    let latencies: Vec<Duration> = by_page.iter().flatten().copied().collect();
    let measured = Measured {
        requests: latencies.len(),
        errors,
        elapsed,
        latencies,
        auth0_calls: 0,
        cpu_ticks: cpu,
        peak_rss_kib,
        wire,
    };
    Ok((measured, reads, by_page))
}

/// The floor's transactions as pages of reads (transaction n of its one client reads page
/// n mod `pages`): per page its latencies, and the whole reads it completed.
fn floor_pages(floor: &FloorRun, pages: usize) -> (Vec<Vec<Duration>>, Vec<Duration>) {
    let mut by_page = vec![Vec::new(); pages];
    let mut reads: HashMap<u64, (usize, Duration)> = HashMap::new();
    for (_, n, took) in floor.numbered.iter().filter(|(client, _, _)| *client == 0) {
        by_page[*n as usize % pages].push(*took);
        let read = reads.entry(*n / pages as u64).or_default();
        read.0 += 1;
        read.1 += *took;
    }
    let mut whole: Vec<(u64, Duration)> = reads
        .into_iter()
        .filter(|(_, (count, _))| *count == pages)
        .map(|(read, (_, took))| (read, took))
        .collect();
    whole.sort();
    (by_page, whole.into_iter().map(|(_, took)| took).collect())
}

/// The SCIM part of a run (BENCH_SCIM).
pub(super) struct ScimRun {
    seconds: u64,
    load: String,
    filter_users: i64,
    /// The filter's tenant's users and the paged tenant's, the seed's included.
    filter_tenant: i64,
    filter: ScimRow,
    paged: PagedRead,
    admin_create: ScimRow,
    scim_create: ScimRow,
    /// Auth0 create + email send made from this process after the creates.
    doubles: Vec<Duration>,
}

/// `\x` and the SHA-256 of `token` in hex: a bytea value for pgbench's `-D`.
fn hash_var(token: &str) -> String {
    format!("\\x{}", hex::encode(shared::scim::tokens::hash(token)))
}

/// Stores `token` in `url`'s database as `owner`'s admin would have made it (only its hash).
async fn store_token(url: &str, owner: &Owner, token: &str) -> Result<(), BoxError> {
    let sql = testkit::harness::connect(url).await;
    let uuid = |text: &str| uuid::Uuid::parse_str(text);
    let hash = shared::scim::tokens::hash(token);
    sql.execute(
        "INSERT INTO scim_tokens (tenant_id, business_id, name, token_hash, token_hint, created_by)
         VALUES ($1, $2, 'bench', $3, 'aup_scim_…', $4)",
        &[
            &uuid(owner.tenant)?,
            &uuid(owner.business)?,
            &hash.as_slice(),
            &uuid(owner.admin)?,
        ],
    )
    .await?;
    Ok(())
}

/// The filter's tenant (`filter_users` in Acme) and the paged read's (`paged_users` in
/// Globex), every user with an employee and two page permissions, in one database.
async fn seed_scim(url: &str, filter_users: i64, paged_users: i64) -> Result<(), BoxError> {
    let sql = testkit::harness::connect(url).await;
    seed_series(
        &sql,
        &ACME_OWNER,
        LIST_ID_PREFIX,
        "list",
        filter_users,
        "2026-01-01 00:00:00+00",
    )
    .await?;
    seed_series(
        &sql,
        &GLOBEX_OWNER,
        PAGED_ID_PREFIX,
        "paged",
        paged_users,
        "2025-06-01 00:00:00+00",
    )
    .await?;
    sql.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}

/// A tenant's users, as SCIM counts them (not pending).
async fn tenant_users(url: &str, tenant: &str) -> Result<i64, BoxError> {
    let sql = testkit::harness::connect(url).await;
    let row = sql
        .query_one(
            "SELECT count(*) FROM users WHERE tenant_id = $1 AND auth0_sub NOT LIKE 'pending\\_%'",
            &[&uuid::Uuid::parse_str(tenant)?],
        )
        .await?;
    Ok(row.get(0))
}

/// The filter, the paged read and the creates, each against its floor.
pub(super) async fn scim_run(settings: ScimSettings) -> Result<ScimRun, BoxError> {
    let ScimSettings {
        postmaster,
        seconds,
        filter_users,
        paged_users,
        ref create_user,
        ref scim,
        ref log_level,
        ref pgbench,
        ref work,
        ref emails,
    } = settings;
    let load = super::load_average();
    let seeding = Instant::now();
    let stack = fresh_stack().await?;
    let floor_db = TestDb::create().await;
    let (seeded, floor_seeded) = tokio::join!(
        seed_scim(&stack.db.url, filter_users, paged_users),
        seed_scim(&floor_db.url, filter_users, paged_users)
    );
    seeded?;
    floor_seeded?;
    println!(
        "scim: seeded {filter_users} users in Acme and {paged_users} in Globex, in each of two \
         databases, in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    // The tenants' tokens, made through the admin API; the floors' database holds their hashes.
    let acme_token = stack.scim_token(seed::ACME_ADMIN_SUB).await;
    let globex_token = stack.scim_token(seed::GLOBEX_ADMIN_SUB).await;
    store_token(&floor_db.url, &ACME_OWNER, &acme_token).await?;
    store_token(&floor_db.url, &GLOBEX_OWNER, &globex_token).await?;
    let filter_tenant = tenant_users(&stack.db.url, seed::ACME).await?;
    let paged_total = tenant_users(&stack.db.url, seed::GLOBEX).await? as u64;

    let vars = app_vars(&stack, log_level);
    let mut relayed = vars.clone();
    let counts = Arc::new(WireCounts::default());
    let port = start_relay(upstream_of(&stack.db.url)?, counts.clone()).await?;
    let mut url = url::Url::parse(&stack.db.url)?;
    url.set_port(Some(port))
        .map_err(|_| "cannot set the port")?;
    relayed.insert("DATABASE_URL".into(), url.into());
    let scim_target = Target {
        binary: scim,
        function: "scim",
        vars: &vars,
        relayed: &relayed,
        counts: &counts,
        stack: &stack,
    };
    let create_user_target = Target {
        binary: create_user,
        function: "create-user",
        ..scim_target
    };
    let floor = Floor {
        postmaster,
        pgbench,
        work,
        url: &floor_db.url,
    };
    let limit = ["-T".to_string(), seconds.to_string()];
    let requests = |kind| Requests {
        kind,
        token: &acme_token,
        users: filter_users.max(1) as u64,
        next: AtomicU64::new(0),
        emails,
    };

    // The filter.
    let measured = scim_target
        .measure(&requests(Kind::Filter), seconds)
        .await?;
    let (file, sql) = FILTER_FLOOR;
    let script = Script {
        file,
        sql,
        vars: vec![
            ("hash", hash_var(&acme_token)),
            ("users", filter_users.max(1).to_string()),
            ("offset", "0".into()),
            ("count", PAGE_SIZE.to_string()),
        ],
    };
    let floor_run = floor.run(&script, 1, &limit, "floor-scim-filter").await?;
    let filter = measured.with_floor(Kind::Filter.name(), floor_run, sql);
    println!("{filter}");

    // The paged read.
    let pages = pages_of(paged_total);
    let (measured, reads, by_page) =
        measure_paged(&scim_target, &globex_token, paged_total, seconds).await?;
    let (file, sql) = PAGE_FLOOR;
    let script = Script {
        file,
        sql,
        vars: vec![
            ("hash", hash_var(&globex_token)),
            ("pages", pages.to_string()),
            ("count", PAGE_SIZE.to_string()),
            ("n", "0".into()),
        ],
    };
    let floor_run = floor.run(&script, 1, &limit, "floor-scim-pages").await?;
    let (floor_by_page, floor_reads) = floor_pages(&floor_run, pages);
    let paged = PagedRead {
        row: measured.with_floor("paged read, a page", floor_run, sql),
        total: paged_total,
        pages,
        reads,
        by_page,
        floor_reads,
        floor_by_page,
    };
    println!(
        "{}; whole read p50 {:.1} ms over {} reads (floor {:.1} ms over {})",
        paged.row,
        Stats::of(&paged.reads).p50,
        paged.reads.len(),
        Stats::of(&paged.floor_reads).p50,
        paged.floor_reads.len()
    );

    // The creates: the admin API's, then SCIM's, each against its floor.
    let mut creates = Vec::new();
    for (kind, target, (file, sql)) in [
        (Kind::AdminCreate, &create_user_target, ADMIN_CREATE_FLOOR),
        (Kind::ScimCreate, &scim_target, SCIM_CREATE_FLOOR),
    ] {
        let measured = target.measure(&requests(kind), seconds).await?;
        let script = Script {
            file,
            sql,
            vars: vec![
                ("sub", seed::ACME_ADMIN_SUB.to_string()),
                ("hash", hash_var(&acme_token)),
            ],
        };
        let floor_run = floor
            .run(&script, 1, &limit, &format!("floor-{kind:?}"))
            .await?;
        let row = measured.with_floor(kind.name(), floor_run, sql);
        println!("{row}");
        creates.push(row);
    }
    let doubles = doubles_time(&stack, emails).await?;
    let scim_create = creates.pop().ok_or("no SCIM create row")?;
    let admin_create = creates.pop().ok_or("no admin create row")?;
    Ok(ScimRun {
        seconds,
        load,
        filter_users,
        filter_tenant,
        filter,
        paged,
        admin_create,
        scim_create,
        doubles,
    })
}

/// An identity provider's first sync against Auth0's rate limit.
pub(super) struct SyncRun {
    users: u64,
    rate: u32,
    workers: usize,
    /// Creates answered 201.
    created: usize,
    /// Requests answered neither 201 nor 429 (or not at all).
    failed: usize,
    /// 429 answers, each retried after its `Retry-After`.
    rate_limited: usize,
    /// The seconds of `Retry-After` the workers waited, all together.
    waited_s: u64,
    elapsed: Duration,
    /// The 201 answers' latencies.
    latencies: Vec<Duration>,
    /// Management API calls the double counted (429s included).
    auth0_calls: usize,
    /// The sync's rows in Postgres and its users in the Auth0 double.
    rows: usize,
    auth0_users: usize,
    /// Rows without their Auth0 user (pending, or linked to none) and Auth0 users without a
    /// row.
    half_done: usize,
}

impl SyncRun {
    fn per_sec(&self) -> f64 {
        self.created as f64 / self.elapsed.as_secs_f64()
    }

    fn met(&self) -> bool {
        self.per_sec() >= SYNC_TARGET * f64::from(self.rate)
            && self.failed == 0
            && self.half_done == 0
            && self.created as u64 == self.users
    }
}

impl std::fmt::Display for SyncRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = Stats::of(&self.latencies);
        write!(
            f,
            "scim, first sync: {} of {} users created by {} workers in {:.1} s = {:.2}/s (Auth0 \
             limit {}/s); {} answers 429 ({} s of Retry-After waited); {} failed; {} Management \
             API calls; {} rows, {} Auth0 users, {} half-done; create p50 {:.1} p99 {:.1} ms",
            self.created,
            self.users,
            self.workers,
            self.elapsed.as_secs_f64(),
            self.per_sec(),
            self.rate,
            self.rate_limited,
            self.waited_s,
            self.failed,
            self.auth0_calls,
            self.rows,
            self.auth0_users,
            self.half_done,
            l.p50,
            l.p99,
        )
    }
}

/// User k of the first sync, as Okta sends it (no password: each is invited).
fn sync_body(k: u64) -> Value {
    let email = format!("sync{k}@{SYNC_DOMAIN}");
    json!({
        "schemas": [CORE_USER],
        "userName": email,
        "name": {"givenName": "Sync", "familyName": format!("User{k}")},
        "emails": [{"value": email, "type": "work", "primary": true}],
        "externalId": format!("00u{k:016}"),
        "active": true
    })
}

/// The `Retry-After` of a Lambda response, in seconds.
fn retry_after(raw: &Value) -> Option<u64> {
    raw["headers"]
        .as_object()?
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, value)| value.as_str()?.trim().parse().ok())
}

/// What one worker of the sync saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    failed: usize,
    rate_limited: usize,
    waited_s: u64,
}

/// `users` SCIM creates in Acme by `workers` workers, each with an instance of its own (Lambda
/// gives an instance one request at a time), against the Auth0 double limited to `rate`
/// Management API calls a second. A worker sends its next user when the last was created;
/// on a 429 it waits the answer's `Retry-After` and sends the same user again; any other
/// answer is a failed request. Then every row must have its Auth0 user and every Auth0 user
/// its row.
pub(super) async fn sync_run(settings: SyncSettings) -> Result<SyncRun, BoxError> {
    let SyncSettings {
        users,
        rate,
        workers,
        ref scim,
        ref log_level,
    } = settings;
    let prepared = TestStack::prepare().await;
    prepared.auth0.set_rate_limit(Some(rate));
    let stack = prepared.start(None).await?;
    let token = stack.scim_token(seed::ACME_ADMIN_SUB).await;
    let vars = app_vars(&stack, log_level);
    let mut instances = Vec::with_capacity(workers);
    for _ in 0..workers.max(1) {
        instances.push(Instance::start_as(scim, &vars, "scim").await?.0);
    }
    let next = AtomicU64::new(0);
    let calls_before = management_calls(&stack.auth0);
    let started = Instant::now();
    let loops = instances.iter().map(|instance| {
        let (next, token) = (&next, &token);
        async move {
            let mut tally = Tally::default();
            while let Some(k) = take(next, users) {
                let body = sync_body(k);
                loop {
                    let event = scim_event("POST", SCIM_USERS_PATH, Some(token), Some(&body), &[]);
                    let answer = instance.answer(event).await;
                    let status = match &answer {
                        Ok((_, Outcome::Response(raw))) => raw["statusCode"].as_u64(),
                        _ => None,
                    };
                    match (status, answer) {
                        (Some(201), Ok((took, _))) => {
                            tally.latencies.push(took);
                            break;
                        }
                        (Some(429), Ok((_, Outcome::Response(raw)))) => {
                            let wait = retry_after(&raw).unwrap_or(1);
                            tally.rate_limited += 1;
                            tally.waited_s += wait;
                            tokio::time::sleep(Duration::from_secs(wait)).await;
                        }
                        (_, answer) => {
                            if tally.failed == 0 {
                                eprintln!("scim, first sync: user {k}: {answer:?}");
                            }
                            tally.failed += 1;
                            break;
                        }
                    }
                }
            }
            tally
        }
    });
    let tallies = futures::future::join_all(loops).await;
    let elapsed = started.elapsed();
    let auth0_calls = management_calls(&stack.auth0) - calls_before;
    for instance in instances {
        instance.stop().await;
    }

    // Half-done users: a row whose Auth0 user is missing (or still pending), an Auth0 user
    // without its row.
    let rows = stack
        .sql()
        .await
        .query(
            "SELECT auth0_sub FROM users WHERE email LIKE '%@' || $1",
            &[&SYNC_DOMAIN],
        )
        .await?;
    let subs: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let auth0_ids: HashSet<String> = stack
        .auth0
        .users()
        .iter()
        .filter(|u| {
            u["email"]
                .as_str()
                .is_some_and(|e| e.ends_with(&format!("@{SYNC_DOMAIN}")))
        })
        .filter_map(|u| u["user_id"].as_str().map(str::to_string))
        .collect();
    let half_done = subs.difference(&auth0_ids).count() + auth0_ids.difference(&subs).count();

    let mut run = SyncRun {
        users,
        rate,
        workers: workers.max(1),
        created: 0,
        failed: 0,
        rate_limited: 0,
        waited_s: 0,
        elapsed,
        latencies: Vec::new(),
        auth0_calls,
        rows: subs.len(),
        auth0_users: auth0_ids.len(),
        half_done,
    };
    for tally in tallies {
        run.created += tally.latencies.len();
        run.latencies.extend(tally.latencies);
        run.failed += tally.failed;
        run.rate_limited += tally.rate_limited;
        run.waited_s += tally.waited_s;
    }
    println!("{run}");
    Ok(run)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// The SCIM rows' part of the report.
pub(super) fn render_scim(t: &mut String, run: &ScimRun) {
    use std::fmt::Write as _;
    let ms = |d: &[Duration]| Stats::of(d);
    let paged = &run.paged;
    let _ = writeln!(
        t,
        "SCIM (the `scim` function), at one instance (load average before it {}). Each row runs \
         for {} s after {WARM_UP} requests of warm-up, then its floor for as long with one \
         pgbench client on a database seeded alike: Acme has {} users more ({} in all), each \
         with an employee and two page permissions; Globex {} users ({} pages of {PAGE_SIZE}). \
         The filter looks Acme's users up in turn (`filter=userName eq \"…\"&startIndex=1&count=\
         100`), its floor at random; the paged read reads all of Globex's pages in order, again \
         and again, and so does its floor. A floor is the token's lookup \
         (`scim_tokens::FIND`), the count and the page (`user_views::count_matching_sql`, \
         `matching_page_sql`), one round trip each (the function sends the count and the page \
         in one). Target: p50 within {READ_TARGET} × the SELECTs' p50, for the paged read in \
         every tenth of the read.\n",
        run.load, run.seconds, run.filter_users, run.filter_tenant, paged.total, paged.pages,
    );
    let _ = writeln!(
        t,
        "| read | requests/s | p50 ms | p99 ms | SELECTs p50 ms | ratio | worst tenth of the \
         read | target ms | met | round trips | statements (floor's) | CPU ms per request | \
         peak RSS |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let row = |t: &mut String, r: &ScimRow, worst: &str, met: bool| {
        let l = ms(&r.latencies);
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2}× | {worst} | {:.2} | {} | {:.2} | {:.2} ({}) | {:.3} | {:.1} MiB |",
            r.name,
            r.per_sec(),
            l.p50,
            l.p99,
            r.floor_p50(),
            r.p50() / r.floor_p50(),
            READ_TARGET * r.floor_p50(),
            verdict(met),
            r.wire.per_request(r.wire.round_trips),
            r.wire.per_request(r.wire.statements),
            r.floor_statements,
            ticks_per(r.cpu_ticks, r.requests as u64),
            r.peak_rss_kib as f64 / 1024.0,
        );
    };
    let filter_met = run.filter.p50() <= READ_TARGET * run.filter.floor_p50();
    row(t, &run.filter, "—", filter_met);
    let (from, to, worst) = paged.worst_band();
    row(
        t,
        &paged.row,
        &format!("{worst:.2}× (pages {from}–{to})"),
        paged.met(),
    );
    let _ = writeln!(t);
    let bands: Vec<String> = paged
        .bands()
        .iter()
        .map(|(from, to, p50, floor)| format!("{from}–{to}: {p50:.2} ms ({:.2}×)", p50 / floor))
        .collect();
    let _ = writeln!(
        t,
        "The whole paged read ({} pages, {} users): p50 {:.1} ms, p95 {:.1} ms over {} reads; \
         its floor's {:.1} ms over {} reads ({:.2}×). Per tenth of the read, the page's p50 \
         (against its SELECTs'): {}.\n",
        paged.pages,
        paged.total,
        ms(&paged.reads).p50,
        ms(&paged.reads).p95,
        paged.reads.len(),
        ms(&paged.floor_reads).p50,
        paged.floor_reads.len(),
        ms(&paged.reads).p50 / ms(&paged.floor_reads).p50,
        bands.join("; "),
    );

    let _ = writeln!(
        t,
        "SCIM creates beside the admin API's create, at one instance each, the same person \
         (a name, an address, no page permissions, invited by email) in Acme: `POST \
         /scim/v2/Users` with the tenant's token to `scim`, `POST /api/direct-users/create` \
         with its admin's JWT to `create-user`; each for {} s after {WARM_UP} of warm-up, then \
         its floor (its own statements, `tests/bench/scim_create_floor.sql` and \
         `create_user_no_pages_floor.sql`) for as long with one pgbench client. The doubles' \
         p50 for a create's Auth0 create and email send: {:.2} ms. Target: the SCIM create's \
         p50 within {CREATE_TARGET} × the admin API's.\n",
        run.seconds,
        ms(&run.doubles).p50,
    );
    let _ = writeln!(
        t,
        "| create | creates/s | p50 ms | p99 ms | floor p50 ms | ratio to the floor | target ms \
         | met | round trips | statements (floor's) | Auth0 calls | CPU ms per create | peak RSS \
         | errors |"
    );
    let _ = writeln!(
        t,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let create_target = CREATE_TARGET * run.admin_create.p50();
    let create_met = run.scim_create.p50() <= create_target;
    for (r, target, met) in [
        (&run.admin_create, "—".to_string(), "—"),
        (
            &run.scim_create,
            format!("{create_target:.2}"),
            verdict(create_met),
        ),
    ] {
        let l = ms(&r.latencies);
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2}× | {target} | {met} | {:.2} | {:.2} ({}) | {:.2} | {:.3} | {:.1} MiB | {} |",
            r.name,
            r.per_sec(),
            l.p50,
            l.p99,
            r.floor_p50(),
            r.p50() / r.floor_p50(),
            r.wire.per_request(r.wire.round_trips),
            r.wire.per_request(r.wire.statements),
            r.floor_statements,
            r.auth0_calls as f64 / r.requests.max(1) as f64,
            ticks_per(r.cpu_ticks, r.requests as u64),
            r.peak_rss_kib as f64 / 1024.0,
            r.errors,
        );
    }
    let _ = writeln!(t);
    let errors =
        run.filter.errors + paged.row.errors + run.admin_create.errors + run.scim_create.errors;
    let _ = writeln!(
        t,
        "Targets (SCIM): a filter lookup within {READ_TARGET} × its SELECTs ({:.2} ms against \
         {:.2} ms): {}; any page within {READ_TARGET} × its SELECTs (the worst tenth of the \
         read {worst:.2}×, all pages {:.2}×): {}; a SCIM create within {CREATE_TARGET} × the \
         admin API's create ({:.2} ms against {:.2} ms: {:.2}×): {}. Errors: {errors}.\n",
        run.filter.p50(),
        READ_TARGET * run.filter.floor_p50(),
        verdict(filter_met),
        paged.row.p50() / paged.row.floor_p50(),
        verdict(paged.met()),
        run.scim_create.p50(),
        run.admin_create.p50(),
        run.scim_create.p50() / run.admin_create.p50(),
        verdict(create_met),
    );
}

/// The first sync's part of the report.
pub(super) fn render_sync(t: &mut String, run: &SyncRun) {
    use std::fmt::Write as _;
    let l = Stats::of(&run.latencies);
    let _ = writeln!(
        t,
        "An identity provider's first sync: {} SCIM creates in Acme by {} workers, each with a \
         `scim` instance of its own, against the Auth0 double limited to {} Management API \
         calls a second (a fixed one-second window, 429 with `Retry-After` beyond it; the \
         function waits out up to two 429s itself, then answers 429 with `Retry-After`). A \
         worker sends its next user once the last was created, and on a 429 sends the same user \
         again after the answer's `Retry-After`, as an identity provider does. Target: creates \
         per second at least {SYNC_TARGET} × the limit's rate, no failed request (an answer \
         other than 201 or 429), no half-done user (a row without its Auth0 user or an Auth0 \
         user without its row).\n",
        run.users, run.workers, run.rate,
    );
    let _ = writeln!(
        t,
        "| users | workers | Auth0 limit /s | created | whole sync s | creates/s | ratio to the \
         limit | met | 429 answers (retried) | Retry-After waited s | failed requests | \
         half-done users | Management API calls per create | create p50 ms | create p99 ms |"
    );
    let _ = writeln!(
        t,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let _ = writeln!(
        t,
        "| {} | {} | {} | {} | {:.1} | {:.2} | {:.2}× | {} | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} |\n",
        run.users,
        run.workers,
        run.rate,
        run.created,
        run.elapsed.as_secs_f64(),
        run.per_sec(),
        run.per_sec() / f64::from(run.rate),
        verdict(run.met()),
        run.rate_limited,
        run.waited_s,
        run.failed,
        run.half_done,
        run.auth0_calls as f64 / run.created.max(1) as f64,
        l.p50,
        l.p99,
    );
    let _ = writeln!(
        t,
        "After the sync: {} rows and {} Auth0 users of the sync's addresses.\n",
        run.rows, run.auth0_users
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_read_is_its_transactions_in_page_order() {
        let took = |ms| Duration::from_millis(ms);
        let floor = FloorRun {
            clients: 1,
            transactions: 7,
            tps: 0.0,
            latencies: Vec::new(),
            numbered: (0..7).map(|n| (0, n, took(n + 1))).collect(),
            cpu_seconds: 0.0,
            db_ticks: 0,
        };
        let (by_page, reads) = floor_pages(&floor, 3);
        assert_eq!(by_page[0], vec![took(1), took(4), took(7)]);
        assert_eq!(by_page[2], vec![took(3), took(6)]);
        // Two whole reads (pages 0–2 and 3–5); the seventh transaction began a third.
        assert_eq!(reads, vec![took(6), took(15)]);
    }

    #[test]
    fn a_read_has_a_page_per_hundred_users() {
        assert_eq!(pages_of(10_001), 101);
        assert_eq!(pages_of(10_000), 100);
        assert_eq!(pages_of(0), 1);
    }

    #[test]
    fn retry_after_is_read_from_the_response_headers() {
        let raw = json!({"statusCode": 429, "headers": {"Retry-After": "2"}});
        assert_eq!(retry_after(&raw), Some(2));
        assert_eq!(retry_after(&json!({"statusCode": 429})), None);
    }
}
