//! `dune doctor [--json]`: runs `libdune::doctor` and reports whether this
//! machine can run Dune mode.

use std::io::{self, Write};
use std::process::ExitCode;

use libdune::doctor::{Report, Verdict};

use super::Error;
use dune_bench::json::Value;

/// Exit statuses, shown under `dune doctor --help`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0   ready: hardware virtualization, everything Dune mode needs is present
  1   unusable: Dune mode cannot run here (the report says why)
  2   emulated: guest ring 0 would run in KVM's instruction emulator (kvm_pvm)
  64  usage error
  70  the report could not be written";

/// Options of `dune doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the report as JSON instead of a listing.
    #[arg(long)]
    pub json: bool,
}

/// Probes the machine, prints the report and returns the exit status that
/// encodes the verdict.
pub fn run(args: &Args) -> Result<ExitCode, Error> {
    let report = libdune::doctor::run();
    let verdict = report.verdict();
    let code = exit_code(&verdict);
    let layers = dune_sandbox::monitor::confine::probe();
    let text = if args.json {
        let mut v = to_json(&report, &verdict, code);
        if let Value::Object(o) = &mut v {
            o.push(("sandbox_layers", Value::Str(layers.to_string())));
        }
        v.to_pretty()
    } else {
        format!("{report}\nsandbox layers this kernel gives: {layers}")
    };
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(Error::Output)?;
    Ok(ExitCode::from(code))
}

/// 0 = ready, 1 = unusable, 2 = emulated ring 0.
pub fn exit_code(verdict: &Verdict) -> u8 {
    match verdict {
        Verdict::Ready => 0,
        Verdict::Unusable { .. } => 1,
        Verdict::Emulated { .. } => 2,
    }
}

/// The JSON form of a report: verdict, exit status, hypervisor, raw facts
/// and every check.
pub fn to_json(report: &Report, verdict: &Verdict, code: u8) -> Value {
    use libdune::doctor::Hypervisor;

    let (kind, reason) = match verdict {
        Verdict::Ready => ("ready", None),
        Verdict::Emulated { reason } => ("emulated", Some(reason)),
        Verdict::Unusable { reason } => ("unusable", Some(reason)),
    };
    let nested = match &report.hypervisor {
        Hypervisor::IntelVtx { nested } | Hypervisor::AmdSvm { nested } => nested.as_deref(),
        _ => None,
    };
    let f = &report.facts;
    let hex = |v: Option<u64>| Value::or_null(v.map(|x| Value::from(format!("{x:#x}"))));
    Value::Object(vec![
        ("verdict", Value::from(kind)),
        (
            "reason",
            Value::or_null(reason.map(|r| Value::from(r.as_str()))),
        ),
        ("exit_code", Value::Int(i64::from(code))),
        (
            "hypervisor",
            Value::Object(vec![
                ("module", Value::from(report.hypervisor.module())),
                ("hardware", Value::Bool(report.hypervisor.is_hardware())),
                ("nested", Value::or_null(nested.map(Value::from))),
            ]),
        ),
        (
            "facts",
            Value::Object(vec![
                (
                    "kernel_release",
                    Value::or_null(f.kernel_release.as_deref().map(Value::from)),
                ),
                ("api_version", Value::or_null(f.api_version.map(Value::from))),
                (
                    "cpu_vendor",
                    Value::or_null(f.cpu_vendor.as_deref().map(Value::from)),
                ),
                (
                    "cpu_model",
                    Value::or_null(f.cpu_model.as_deref().map(Value::from)),
                ),
                (
                    "cpu_virt_flag",
                    Value::or_null(f.cpu_virt_flag.map(Value::Bool)),
                ),
                (
                    "guest_maxphyaddr",
                    Value::or_null(f.guest_maxphyaddr.map(Value::from)),
                ),
                (
                    "host_maxphyaddr",
                    Value::or_null(f.host_maxphyaddr.map(Value::from)),
                ),
                ("host_xcr0", hex(f.host_xcr0)),
                ("guest_xcr0", hex(f.guest_xcr0)),
                ("guest_xsave", Value::or_null(f.guest_xsave.map(Value::Bool))),
                ("nr_memslots", Value::or_null(f.nr_memslots.map(Value::from))),
                ("max_vcpus", Value::or_null(f.max_vcpus.map(Value::from))),
            ]),
        ),
        (
            "checks",
            Value::Array(
                report
                    .checks
                    .iter()
                    .map(|c| {
                        Value::Object(vec![
                            ("name", Value::from(c.name())),
                            ("status", Value::from(c.status.as_str())),
                            ("detail", Value::from(c.detail.as_str())),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use libdune::doctor::{Check, Facts, Hypervisor, Probe, Status};

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&Verdict::Ready), 0);
        let reason = String::from("x");
        assert_eq!(
            exit_code(&Verdict::Unusable {
                reason: reason.clone()
            }),
            1
        );
        assert_eq!(exit_code(&Verdict::Emulated { reason }), 2);
    }

    #[test]
    fn json_of_a_report() {
        let report = Report {
            checks: vec![Check {
                probe: Probe::KvmDevice,
                status: Status::Fail,
                detail: "no \"/dev/kvm\"".into(),
            }],
            hypervisor: Hypervisor::Absent,
            facts: Facts {
                host_xcr0: Some(0x207),
                api_version: None,
                ..Facts::default()
            },
        };
        let verdict = report.verdict();
        let json = to_json(&report, &verdict, exit_code(&verdict)).to_pretty();
        assert!(json.contains("\"verdict\": \"unusable\""), "{json}");
        assert!(json.contains("\"exit_code\": 1"), "{json}");
        assert!(json.contains("\"host_xcr0\": \"0x207\""), "{json}");
        assert!(json.contains("\"api_version\": null"), "{json}");
        assert!(json.contains(r#""detail": "no \"/dev/kvm\"""#), "{json}");
        assert!(json.contains("\"module\": \"none\""), "{json}");
    }
}
