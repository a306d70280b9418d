//! `carbide-extract`: the sandboxed child process that parses one untrusted file and prints the
//! result as JSON. Started by [`carbide_ingest::Sandbox`] with resource limits; never run by hand
//! in production.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(carbide_ingest::isolate::child_main(&args));
}
