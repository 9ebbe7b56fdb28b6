//! `mangrove`: the controller daemon, the operators' CLI, and the testbed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use controller::cli::{self, TaskRun};
use controller::client::{Client, Flags};
use controller::config::{Config, parse_duration};

/// Policy evaluation allocates and frees many small values per control; mimalloc makes it
/// about 5 % faster than glibc's allocator (policies/benches/evaluate.rs, which uses it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "mangrove", version, about = "Run a provincial data center and its DR site as one")]
struct Cli {
    /// Controller API URL (else MANGROVE_CONTROLLER, else the CLI config file).
    #[arg(long, global = true)]
    controller: Option<String>,
    /// API token (else MANGROVE_TOKEN, else the CLI config file).
    #[arg(long, global = true, hide_env_values = true)]
    token: Option<String>,
    /// CA certificate to trust for the API (else MANGROVE_CA, else the CLI config file).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The controller daemon.
    Controller {
        #[command(subcommand)]
        cmd: ControllerCmd,
    },
    /// API tokens and agent bootstrap tokens.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// People who sign in to the web console: add (password from stdin), list.
    Users {
        #[command(subcommand)]
        cmd: controller::cli_users::UsersCmd,
    },
    /// Hosts and their state.
    Hosts {
        #[command(subcommand)]
        cmd: HostsCmd,
    },
    /// Virtualization platforms (vCenter, OpenStack, libvirt): sync and drift.
    Platforms {
        #[command(subcommand)]
        cmd: PlatformsCmd,
    },
    /// Security-level policy packs: list, show, and check pack directories.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// Compliance reports and evidence bundles for inspectors.
    Compliance {
        #[command(subcommand)]
        cmd: ComplianceCmd,
    },
    /// Video-conference endpoints: readiness before meetings.
    Vc {
        #[command(subcommand)]
        cmd: VcCmd,
    },
    /// Backups: plans, runs, restore points, verification and restores.
    Backup {
        #[command(subcommand)]
        cmd: BackupCmd,
    },
    /// Capacity for planners: forecasts, DR headroom, what-if scenarios, reports, history.
    Capacity {
        #[command(subcommand)]
        cmd: CapacityCmd,
    },
    /// Information systems (HTTT): level, framework, owner, the machines they run on.
    Systems {
        #[command(subcommand)]
        cmd: SystemsCmd,
    },
    /// VMs and instances found on the platforms: list, power, snapshots.
    Vms {
        #[command(subcommand)]
        cmd: VmsCmd,
    },
    /// Managed computers' protection, from Kaspersky Security Center: summary, list, read now.
    Endpoints {
        #[command(subcommand)]
        cmd: EndpointsCmd,
    },
    /// Enrolled agents.
    Agents {
        #[command(subcommand)]
        cmd: AgentsCmd,
    },
    /// Inventory files.
    Inventory {
        #[command(subcommand)]
        cmd: InventoryCmd,
    },
    /// Ansible: Mangrove's inventory for Ansible, inventory import, playbooks.
    Ansible {
        #[command(subcommand)]
        cmd: controller::cli_ansible::AnsibleCmd,
    },
    /// Drills and failovers: pre-flight, start, follow, pause, abort, report.
    Drill {
        #[command(subcommand)]
        cmd: controller::cli_drills::DrillCmd,
    },
    /// Approval requests for failovers (two-person rule).
    Approvals {
        #[command(subcommand)]
        cmd: controller::cli_drills::ApprovalsCmd,
    },
    /// Recovery plans: apply a plan file, list, show, diff versions.
    Plans {
        #[command(subcommand)]
        cmd: controller::cli_plans::PlansCmd,
    },
    /// DR images of a plan's `image` workloads: refresh them from vCenter.
    Images {
        #[command(subcommand)]
        cmd: controller::cli_images::ImagesCmd,
    },
    /// Tasks run by agents.
    Tasks {
        #[command(subcommand)]
        cmd: TasksCmd,
    },
    /// The simulated province on this machine.
    Testbed {
        #[command(subcommand)]
        cmd: TestbedCmd,
    },
}

#[derive(Subcommand)]
enum EndpointsCmd {
    /// Counts by status and reason, for the province and per administration group.
    Summary,
    /// Every computer, or those with a status (ok, warning, critical) or a reason.
    List {
        #[arg(long, value_parser = ["ok", "warning", "critical"])]
        status: Option<String>,
        /// av_bases_too_old, rtp_off, agent_inactive, too_many_viruses, full_scan_too_old,
        /// av_not_installed.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Read KSC now (operator or security); the last good roll-up stays if the read fails.
    Refresh,
}

#[derive(Subcommand)]
enum ControllerCmd {
    /// Run the controller until SIGTERM or Ctrl-C.
    Run {
        /// TOML configuration file (see the README for every key).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a token: `--role agent` for a single-use agent bootstrap token, any other role
    /// for a person's API token (`--user NAME`).
    Create {
        #[arg(long)]
        role: String,
        #[arg(long)]
        user: Option<String>,
        /// Bind an agent token to this host name.
        #[arg(long)]
        host: Option<String>,
        /// Lifetime: 30s, 15m, 1h, 90d (default 1h for agents, 90d for people).
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<Duration>,
    },
}

#[derive(Subcommand)]
enum HostsCmd {
    List,
    Show {
        name: String,
    },
    /// The events the host's agent reported, newest first (threat detections are
    /// `antivirus.threat`).
    Events {
        name: String,
        /// Only events of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many (default 100, at most 1000).
        #[arg(long)]
        limit: Option<i64>,
    },
}

#[derive(Subcommand)]
enum AgentsCmd {
    /// Revoke a host's certificates and cut its live stream.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum InventoryCmd {
    /// Validate an inventory file.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
enum TasksCmd {
    /// Run a program (no shell) on a host: `mangrove tasks run HOST -- PROGRAM ARGS…`.
    Run {
        host: String,
        /// Kill the program after this long.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        timeout: Duration,
        /// Idempotency key: running the same id again returns the first run.
        #[arg(long)]
        id: Option<String>,
        /// Return once the task is created instead of waiting for its result.
        #[arg(long)]
        no_wait: bool,
        #[arg(last = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
    Show {
        id: String,
    },
}

#[derive(Subcommand)]
enum TestbedCmd {
    /// Start a controller and one agent per machine of the inventory.
    Up {
        /// Inventory (default: the built-in Cà Mau example).
        #[arg(long)]
        inventory: Option<PathBuf>,
        /// Testbed dir (default ~/.local/state/mangrove/testbed).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Return once ready, leaving the testbed running.
        #[arg(long)]
        detach: bool,
        /// Machines as agent processes on this host, or as containers on a dc and a dr network.
        #[arg(long, value_enum, default_value = "processes")]
        hosts: controller::testbed_cmd::HostsMode,
        /// With containers: the site whose network the controller joins.
        #[arg(long, default_value = "dc", value_parser = ["dc", "dr"])]
        controller_site: String,
    },
    /// What the testbed and the tests need (Go and govmomi for vCenter, Keystone, libvirt,
    /// the Python clients), and whether each is here; `--install` installs what is missing.
    Deps {
        #[arg(long)]
        install: bool,
    },
    /// The Kaspersky Security Center simulator (run by `testbed up`).
    #[command(hide = true)]
    KscSim {
        #[arg(long)]
        config: PathBuf,
    },
    /// A video-conference device's simulator (run by `testbed up`).
    #[command(hide = true)]
    VcDevice {
        #[arg(long)]
        dir: PathBuf,
    },
    /// The OpenStack simulator (run by `testbed up`).
    #[command(hide = true)]
    OpenstackSim {
        #[arg(long)]
        config: PathBuf,
    },
    /// Stop every process of a testbed.
    Down {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The container image the testbed's hosts run.
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Inject a fault (container hosts); every fault is undone by `fault heal`.
    Fault {
        #[arg(long, global = true)]
        dir: Option<PathBuf>,
        #[command(subcommand)]
        cmd: FaultCmd,
    },
    /// List the faults in force.
    Faults {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Random faults (seeded) while agents report, then heal and check that nothing was lost.
    Chaos {
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The same seed replays the same fault schedule.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many faults.
        #[arg(long, default_value_t = 100)]
        faults: usize,
        /// Over how long the faults start (default: one second per fault).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<std::time::Duration>,
        /// Faults applied or undone side by side.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Command tasks submitted per second while the faults run.
        #[arg(long, default_value_t = 10)]
        task_rate: u32,
    },
    /// A TCP proxy that delays each direction (run by `fault latency` inside a host).
    #[command(hide = true)]
    DelayProxy {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        to: std::net::SocketAddr,
        #[arg(long, value_parser = parse_duration)]
        delay: std::time::Duration,
    },
}

#[derive(Subcommand)]
enum PlatformsCmd {
    /// The configured platforms and how their last sync went.
    List,
    /// Read a platform (or every platform) now and store what it has.
    Sync { name: Option<String> },
    /// VMs in no system, declared workloads that do not exist, VMs changed since the last sync.
    Drift,
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// The shipped packs, one per legal framework.
    Packs,
    /// A control's metadata: `CONTROL` or `PACK/CONTROL`.
    Show { control: String },
    /// Check a pack directory's metadata and Rego; errors as `file:line:column: message`.
    Lint { dir: PathBuf },
    /// Run a pack directory's Rego unit tests.
    Test { dir: PathBuf },
    /// Apply a pack to a system or to every system of a level (`security` role; audited).
    Assign {
        pack: String,
        #[arg(long, conflicts_with = "level")]
        system: Option<String>,
        #[arg(long)]
        level: Option<u8>,
        #[arg(long, default_value = "audit", value_parser = ["audit", "enforce"])]
        mode: String,
        /// Show every remediation task enforce would run now; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Waive a control on a host or system until a date, with a reason (`security`; audited).
    Waive {
        control: String,
        #[arg(long, conflicts_with = "system")]
        host: Option<String>,
        #[arg(long)]
        system: Option<String>,
        /// `2027-01-31` or an RFC 3339 time.
        #[arg(long)]
        until: String,
        #[arg(long)]
        reason: String,
    },
    /// Evaluate now (fresh facts first) and wait for the result.
    Evaluate {
        #[arg(long, conflicts_with = "system")]
        host: Option<String>,
        #[arg(long)]
        system: Option<String>,
    },
    /// A control's status changes on a host: when it started failing, when it was fixed, by what.
    History { host: String, control: String },
    /// The current findings.
    Findings {
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        system: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
}

#[derive(Subcommand)]
enum ComplianceCmd {
    /// The compliance report: per system, each applicable control's status, evidence, waivers
    /// and the clause cited (stdout unless --out).
    Report {
        #[arg(long)]
        system: Option<String>,
        #[arg(long)]
        framework: Option<String>,
        #[arg(long, default_value = "html", value_parser = ["html", "json", "csv"])]
        format: String,
        #[arg(long, default_value = "vi", value_parser = ["vi", "en"])]
        lang: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The compliance score by system, by level and by site.
    Scores,
    /// A zip with the report (both languages), raw findings and evidence, for an inspection.
    Evidence {
        #[arg(long)]
        system: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum BackupCmd {
    /// Each system's backup plans: what, where, when, how long kept, and the rule they meet.
    Plans,
    /// Back a system up now (every plan, or one) and wait for it.
    Run {
        system: String,
        #[arg(long)]
        plan: Option<String>,
        /// Show progress while it runs.
        #[arg(long)]
        follow: bool,
    },
    /// A system's restore points, newest first.
    List { system: String },
    /// Systems whose RPO is breached now.
    Alerts,
    /// Check the repositories (`restic check`), or with --restore, restore the newest restore
    /// point on the restore host and compare every file with its manifest.
    Verify {
        system: String,
        #[arg(long)]
        restore: bool,
        /// Only this plan's repositories (platform snapshot plans have none).
        #[arg(long)]
        plan: Option<String>,
    },
    /// Restore a restore point onto a host (operator; refuses a non-empty target without --force).
    Restore {
        system: String,
        #[arg(long)]
        snapshot: String,
        /// HOST:/path
        #[arg(long)]
        to: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum CapacityCmd {
    /// Per site and resource: use, capacity, growth, and days until 80 % and 100 % (expected
    /// and conservative).
    Forecast,
    /// Whether the DR site can run the systems, by recovery priority group.
    Headroom {
        /// Only the systems of this recovery plan.
        #[arg(long)]
        plan: Option<String>,
        /// Count without this host (repeatable).
        #[arg(long = "lose-host")]
        lose_hosts: Vec<String>,
    },
    /// The effect of a scenario on time remaining and DR headroom. Changes combine.
    Whatif {
        /// The site VMs, hosts and storage are added to.
        #[arg(long, default_value = "dc")]
        site: String,
        /// Add this many VMs of --vm-size.
        #[arg(long)]
        add_vms: Option<u32>,
        /// VCPUS,MEMORY_GB,DISK_GB, e.g. 4,16,200.
        #[arg(long)]
        vm_size: Option<String>,
        /// Add an information system at the primary site (with --priority and --system-size).
        #[arg(long)]
        add_system: Option<String>,
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
        priority: Option<u8>,
        #[arg(long)]
        system_size: Option<String>,
        /// Lose this host (repeatable).
        #[arg(long = "lose-host")]
        lose_hosts: Vec<String>,
        /// Add this many hosts of --host-size.
        #[arg(long)]
        add_hosts: Option<u32>,
        /// CORES,MEMORY_GB, e.g. 48,512.
        #[arg(long)]
        host_size: Option<String>,
        /// Add storage, in TB.
        #[arg(long = "add-storage")]
        add_storage_tb: Option<f64>,
    },
    /// The capacity report for planners (stdout unless --out).
    Report {
        #[arg(long, default_value = "html", value_parser = ["html", "json", "csv"])]
        format: String,
        #[arg(long, default_value = "vi", value_parser = ["vi", "en"])]
        lang: String,
        /// How much history to show, e.g. 90d.
        #[arg(long, default_value = "90d", value_parser = parse_duration)]
        period: Duration,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// One series by day: a site, host, pool (`platform/pool`) or system.
    History {
        scope: String,
        #[arg(long, value_parser = ["cpu", "memory", "storage", "vms"])]
        resource: String,
        #[arg(long, default_value = "site", value_parser = ["site", "host", "pool", "system"])]
        kind: String,
        #[arg(long, default_value_t = 90)]
        days: u64,
    },
    /// Import history kept elsewhere: a JSON array of samples (see the README).
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum SystemsCmd {
    /// Each system with its level, framework, owner, hosts and compliance score.
    List,
}

#[derive(Subcommand)]
enum VmsCmd {
    /// VMs of every platform, or of one system or platform.
    List {
        #[arg(long)]
        system: Option<String>,
        #[arg(long)]
        platform: Option<String>,
    },
    /// One VM (NAME or PLATFORM/NAME), with its history.
    Show { name: String },
    /// Power a VM on, off (cut power) or shutdown (ask the guest OS). Needs the operator role.
    Power {
        name: String,
        #[arg(value_parser = ["on", "off", "shutdown"])]
        action: String,
    },
    /// Snapshots of a VM: `create NAME`, `list`, `revert ID|NAME`, `delete ID|NAME`.
    Snapshot {
        name: String,
        #[arg(value_parser = ["create", "list", "revert", "delete"])]
        action: String,
        /// The snapshot's name (create) or its id or unique name (revert, delete).
        snapshot: Option<String>,
    },
}

#[derive(Subcommand)]
enum VcCmd {
    /// Run every check of every device now (in parallel) and print go/no-go with reasons.
    Check {
        #[arg(long)]
        site: Option<String>,
    },
    /// Each device's last known state and its age.
    Devices,
    /// Devices a scheduled pre-meeting check found not ready (`[[vc.schedules]]`).
    Alerts,
    /// The replacement plan: per device its age, software, readiness and failures, ranked.
    Report {
        #[arg(long, default_value = "html", value_parser = ["html", "json", "csv"])]
        format: String,
        #[arg(long, default_value = "vi", value_parser = ["vi", "en"])]
        lang: String,
        /// How much check history the readiness is measured over, e.g. 90d.
        #[arg(long, default_value = "90d", value_parser = parse_duration)]
        period: Duration,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum FaultCmd {
    /// Cut the path between two sites: `fault partition dc dr`.
    Partition { a: String, b: String },
    /// SIGKILL the host's agent (its service manager starts it again).
    Kill { host: String },
    /// Stop the host's container (the machine is off, its disk kept).
    Stop { host: String },
    /// Start a host stopped by `fault stop`.
    Start { host: String },
    /// Freeze every process of the host.
    Pause { host: String },
    /// Skew the clock the host's agent sees: `fault clock HOST +300s`.
    Clock {
        host: String,
        #[arg(allow_hyphen_values = true)]
        offset: String,
    },
    /// Fill the host's state volume: `fault disk-full HOST`.
    DiskFull { host: String },
    /// Hold the host's traffic to the controller: `fault latency HOST 500ms` (each way).
    Latency { host: String, delay: String },
    /// Break the KSC simulator: `fault ksc unreachable|error|malformed|session-ended`, or
    /// `fault ksc heal`.
    Ksc {
        #[arg(value_parser = ["unreachable", "error", "malformed", "session-ended", "heal"])]
        kind: String,
    },
    /// Break a video-conference device: `fault device NAME down|sip-silent|bad-password|heal`.
    Device {
        name: String,
        #[arg(value_parser = ["down", "sip-silent", "bad-password", "heal"])]
        what: String,
    },
    /// Undo every fault in force.
    Heal,
}

#[derive(Subcommand)]
enum ImageCmd {
    /// Build the host image locally (debootstrap + docker import; cached, rebuilt when the
    /// agent binary changes).
    Build,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MANGROVE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs that go to files (the testbed's, systemd's) stay plain
    // text that grep and the tests can read.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("mangrove: {}", chain(&e));
        std::process::exit(1);
    }
}

/// One line: the error and its causes.
fn chain(e: &anyhow::Error) -> String {
    let msg = e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ");
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(cli: Cli) -> Result<()> {
    let flags = Flags { controller: cli.controller.clone(), token: cli.token.clone(), ca: cli.ca.clone() };
    let client = || Client::resolve(&flags);
    let json = cli.json;
    match cli.command {
        Command::Controller { cmd: ControllerCmd::Run { config } } => {
            init_tracing();
            let cfg = Config::load(config.as_deref(), |k| std::env::var(k).ok())?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
            rt.block_on(controller::daemon::run(cfg))
        }
        Command::Token { cmd: TokenCmd::Create { role, user, host, ttl } } => {
            let ttl = ttl.map(|d| format!("{}s", d.as_secs().max(1)));
            cli::token_create(&client()?, &role, user.as_deref(), host.as_deref(), ttl.as_deref(), json)
        }
        Command::Users { cmd } => controller::cli_users::run(cmd, &client()?, json),
        Command::Hosts { cmd: HostsCmd::List } => cli::hosts_list(&client()?, json),
        Command::Hosts { cmd: HostsCmd::Show { name } } => cli::hosts_show(&client()?, &name, json),
        Command::Hosts { cmd: HostsCmd::Events { name, kind, limit } } => {
            controller::api_events::cli(&client()?, &name, kind.as_deref(), limit, json)
        }
        Command::Platforms { cmd: PlatformsCmd::List } => controller::cli_platforms::platforms_list(&client()?, json),
        Command::Platforms { cmd: PlatformsCmd::Sync { name } } => {
            controller::cli_platforms::platforms_sync(&client()?, name.as_deref(), json)
        }
        Command::Platforms { cmd: PlatformsCmd::Drift } => controller::cli_platforms::platforms_drift(&client()?, json),
        Command::Policy { cmd: PolicyCmd::Packs } => controller::cli_policy::packs(client().ok().as_ref(), json),
        Command::Policy { cmd: PolicyCmd::Show { control } } => controller::cli_policy::show(&control, json),
        Command::Policy { cmd: PolicyCmd::Lint { dir } } => controller::cli_policy::lint(&dir, json),
        Command::Policy { cmd: PolicyCmd::Test { dir } } => controller::cli_policy::test(&dir, json),
        Command::Policy { cmd: PolicyCmd::Assign { pack, system, level, mode, dry_run } } => {
            controller::cli_policy::assign(&client()?, &pack, system.as_deref(), level, &mode, dry_run, json)
        }
        Command::Policy { cmd: PolicyCmd::Waive { control, host, system, until, reason } } => {
            controller::cli_policy::waive(
                &client()?,
                &control,
                host.as_deref(),
                system.as_deref(),
                &until,
                &reason,
                json,
            )
        }
        Command::Policy { cmd: PolicyCmd::Evaluate { host, system } } => {
            controller::cli_policy::evaluate(&client()?, host.as_deref(), system.as_deref(), json)
        }
        Command::Policy { cmd: PolicyCmd::History { host, control } } => {
            controller::cli_policy::history(&client()?, &host, &control, json)
        }
        Command::Policy { cmd: PolicyCmd::Findings { host, system, status } } => {
            controller::cli_policy::findings(&client()?, host.as_deref(), system.as_deref(), status.as_deref(), json)
        }
        Command::Compliance { cmd: ComplianceCmd::Report { system, framework, format, lang, out } } => {
            controller::cli_policy::compliance_report(
                &client()?,
                system.as_deref(),
                framework.as_deref(),
                &format,
                &lang,
                out.as_deref(),
            )
        }
        Command::Compliance { cmd: ComplianceCmd::Scores } => {
            controller::cli_policy::compliance_scores(&client()?, json)
        }
        Command::Compliance { cmd: ComplianceCmd::Evidence { system, out } } => {
            controller::cli_policy::compliance_evidence(&client()?, &system, &out)
        }
        Command::Capacity { cmd } => capacity(&client()?, cmd, json),
        Command::Backup { cmd } => backup(&client()?, cmd, json),
        Command::Vc { cmd: VcCmd::Check { site } } => controller::cli_vc::check(&client()?, site.as_deref(), json),
        Command::Vc { cmd: VcCmd::Devices } => controller::cli_vc::devices(&client()?, json),
        Command::Vc { cmd: VcCmd::Alerts } => controller::cli_vc::alerts(&client()?, json),
        Command::Vc { cmd: VcCmd::Report { format, lang, period, out } } => {
            controller::cli_vc::report(&client()?, &format, &lang, period.as_secs().div_ceil(86_400), out.as_deref())
        }
        Command::Systems { cmd: SystemsCmd::List } => controller::cli_policy::systems_list(&client()?, json),
        Command::Vms { cmd: VmsCmd::List { system, platform } } => {
            controller::cli_platforms::vms_list(&client()?, system.as_deref(), platform.as_deref(), json)
        }
        Command::Vms { cmd: VmsCmd::Show { name } } => controller::cli_platforms::vms_show(&client()?, &name, json),
        Command::Vms { cmd: VmsCmd::Power { name, action } } => {
            controller::cli_platforms::vms_power(&client()?, &name, &action, json)
        }
        Command::Vms { cmd: VmsCmd::Snapshot { name, action, snapshot } } => {
            controller::cli_platforms::vms_snapshot(&client()?, &name, &action, snapshot.as_deref(), json)
        }
        Command::Endpoints { cmd: EndpointsCmd::Summary } => controller::cli_endpoints::summary(&client()?, json),
        Command::Endpoints { cmd: EndpointsCmd::List { status, reason } } => {
            controller::cli_endpoints::list(&client()?, status.as_deref(), reason.as_deref(), json)
        }
        Command::Endpoints { cmd: EndpointsCmd::Refresh } => controller::cli_endpoints::refresh(&client()?, json),
        Command::Agents { cmd: AgentsCmd::Revoke { name } } => cli::agents_revoke(&client()?, &name, json),
        Command::Inventory { cmd: InventoryCmd::Check { file } } => cli::inventory_check(&file, json),
        Command::Ansible { cmd } => controller::cli_ansible::run(cmd, client, json),
        Command::Plans { cmd } => controller::cli_plans::run(cmd, &client()?, json),
        Command::Images { cmd } => controller::cli_images::run(cmd, &client()?, json),
        Command::Drill { cmd } => controller::cli_drills::drill(cmd, &client()?, json),
        Command::Approvals { cmd } => controller::cli_drills::approvals(cmd, &client()?, json),
        Command::Tasks { cmd: TasksCmd::Run { host, timeout, id, no_wait, command } } => {
            let (program, args) = command.split_first().context("no program given after --")?;
            let t = TaskRun { host: &host, program, args, timeout, id: id.as_deref(), wait: !no_wait };
            cli::tasks_run(&client()?, &t, json)
        }
        Command::Tasks { cmd: TasksCmd::Show { id } } => cli::tasks_show(&client()?, &id, json),
        Command::Testbed { cmd: TestbedCmd::Up { inventory, dir, detach, hosts, controller_site } } => {
            let dir = dir.unwrap_or_else(controller::testbed_cmd::default_dir);
            controller::testbed_cmd::up(controller::testbed_cmd::UpOptions {
                dir,
                inventory,
                detach,
                hosts,
                controller_site,
            })
        }
        Command::Testbed { cmd: TestbedCmd::Image { cmd: ImageCmd::Build } } => {
            controller::testbed_cmd::image_build(json)
        }
        Command::Testbed { cmd: TestbedCmd::Fault { dir, cmd } } => {
            let dir = dir.unwrap_or_else(controller::testbed_cmd::default_dir);
            match cmd {
                FaultCmd::Partition { a, b } => controller::testbed_cmd::fault_partition(&dir, &a, &b, json),
                FaultCmd::Heal => controller::testbed_cmd::fault_heal(&dir, json),
                FaultCmd::Ksc { kind } => controller::testbed_ksc::fault(&dir, &kind, json),
                FaultCmd::Device { name, what } => controller::testbed_cmd::fault_device(&dir, &name, &what, json),
                FaultCmd::Kill { host } => controller::testbed_cmd::fault_host(&dir, "kill", &host, json),
                FaultCmd::Stop { host } => controller::testbed_cmd::fault_host(&dir, "stop", &host, json),
                FaultCmd::Start { host } => controller::testbed_cmd::fault_host(&dir, "start", &host, json),
                FaultCmd::Pause { host } => controller::testbed_cmd::fault_host(&dir, "pause", &host, json),
                FaultCmd::Clock { host, offset } => controller::testbed_cmd::fault_clock(&dir, &host, &offset, json),
                FaultCmd::DiskFull { host } => controller::testbed_cmd::fault_host(&dir, "disk-full", &host, json),
                FaultCmd::Latency { host, delay } => controller::testbed_cmd::fault_latency(&dir, &host, &delay, json),
            }
        }
        Command::Testbed { cmd: TestbedCmd::Faults { dir } } => {
            controller::testbed_cmd::list_faults(&dir.unwrap_or_else(controller::testbed_cmd::default_dir), json)
        }
        Command::Testbed { cmd: TestbedCmd::Chaos { dir, seed, faults, duration, workers, task_rate } } => {
            controller::chaos_cmd::run(
                controller::chaos_cmd::ChaosOptions {
                    dir: dir.unwrap_or_else(controller::testbed_cmd::default_dir),
                    seed,
                    faults,
                    duration,
                    workers,
                    task_rate,
                },
                json,
            )
        }
        Command::Testbed { cmd: TestbedCmd::DelayProxy { listen, to, delay } } => {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(controller::delay_proxy::run(listen, to, delay))
        }
        Command::Testbed { cmd: TestbedCmd::Deps { install } } => controller::testbed_cmd::deps(install, json),
        Command::Testbed { cmd: TestbedCmd::KscSim { config } } => {
            init_tracing();
            let cfg = testbed::ksc::KscSimConfig::load(&config)?;
            testbed::ksc::run_blocking(cfg).map_err(Into::into)
        }
        Command::Testbed { cmd: TestbedCmd::VcDevice { dir } } => testbed::devices::sim::run(&dir).map_err(Into::into),
        Command::Testbed { cmd: TestbedCmd::OpenstackSim { config } } => {
            init_tracing();
            let cfg = testbed::openstack::SimConfig::load(&config)?;
            testbed::openstack::run_blocking(cfg).map_err(Into::into)
        }
        Command::Testbed { cmd: TestbedCmd::Down { dir } } => {
            controller::testbed_cmd::down(&dir.unwrap_or_else(controller::testbed_cmd::default_dir))
        }
    }
}

fn capacity(c: &Client, cmd: CapacityCmd, json: bool) -> Result<()> {
    use controller::cli_capacity as cap;
    match cmd {
        CapacityCmd::Forecast => cap::forecast(c, json),
        CapacityCmd::Headroom { plan, lose_hosts } => cap::headroom(c, plan.as_deref(), &lose_hosts, json),
        CapacityCmd::Whatif {
            site,
            add_vms,
            vm_size,
            add_system,
            priority,
            system_size,
            lose_hosts,
            add_hosts,
            host_size,
            add_storage_tb,
        } => {
            let s = cap::scenario(&cap::WhatifFlags {
                site: &site,
                add_vms,
                vm_size: vm_size.as_deref(),
                add_system: add_system.as_deref(),
                priority,
                system_size: system_size.as_deref(),
                lose_hosts: &lose_hosts,
                add_hosts,
                host_size: host_size.as_deref(),
                add_storage_tb,
            })?;
            cap::whatif(c, &s, json)
        }
        CapacityCmd::Report { format, lang, period, out } => {
            cap::report(c, &format, &lang, period.as_secs().div_ceil(86_400), out.as_deref())
        }
        CapacityCmd::History { scope, resource, kind, days } => cap::history(c, &kind, &scope, &resource, days, json),
        CapacityCmd::Import { file } => cap::import(c, &file, json),
    }
}

fn backup(c: &Client, cmd: BackupCmd, json: bool) -> Result<()> {
    use controller::cli_backups as b;
    match cmd {
        BackupCmd::Plans => b::plans(c, json),
        BackupCmd::Run { system, plan, follow } => b::run(c, &system, plan.as_deref(), follow, json),
        BackupCmd::List { system } => b::list(c, &system, json),
        BackupCmd::Alerts => b::alerts(c, json),
        BackupCmd::Verify { system, restore, plan } => b::verify(c, &system, restore, plan.as_deref(), json),
        BackupCmd::Restore { system, snapshot, to, force } => b::restore(c, &system, &snapshot, &to, force, json),
    }
}
