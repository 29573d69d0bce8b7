//! The `sriov-ovs` CNI plugin binary: the process's environment, stdin and stdout handed to
//! [`sriov_ovs::run`]; with arguments (`install --dest DIR`, `--help`, `--version`) it is the installer;
//! `doctor [flags]` checks the node.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr().lock());
    if args.first().is_some_and(|a| a == "doctor") {
        std::process::exit(sriov_ovs::doctor::command_line(
            &args[1..],
            &mut stdout,
            &mut stderr,
        ));
    }
    if let Some(code) = sriov_ovs::install::command_line(&args, &mut stdout, &mut stderr) {
        std::process::exit(code);
    }
    drop(stderr); // the CNI runtime's worker threads log to stderr
    let env = std::env::vars().collect();
    std::process::exit(sriov_ovs::run(&env, &mut std::io::stdin().lock(), &mut stdout));
}
