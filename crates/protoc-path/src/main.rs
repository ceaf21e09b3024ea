//! Prints the absolute path of the `protoc` binary shipped by the
//! `protoc-bin-vendored` crate, so build scripts can set `PROTOC` without root.

fn main() {
    match protoc_bin_vendored::protoc_bin_path() {
        Ok(path) => println!("{}", path.display()),
        Err(err) => {
            eprintln!("protoc-path: no vendored protoc for this platform: {err}");
            std::process::exit(1);
        }
    }
}
