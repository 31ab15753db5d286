//! Real services for the tests, started on 127.0.0.1 and stopped on drop: moto's S3 server,
//! a Python HTTP receiver, and a TCP proxy that can cut the line (an outage) or answer 503.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `GET path` on 127.0.0.1:port (HTTP/1.1, one request): the status and the body, or None
/// when the server cannot be reached or answers something that is not HTTP.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        code,
        out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string(),
    ))
}

/// The test venv's directory (tests/tooling/setup.sh).
pub fn venv() -> PathBuf {
    std::env::var_os("EVIDENT_TEST_VENV").map_or_else(
        || PathBuf::from("/var/tmp/evident-test-venv"),
        PathBuf::from,
    )
}

/// The test venv's Python when it can import `module` (installed by tests/tooling/setup.sh
/// as `package`), or None outside CI when it cannot (in CI: a failure).
pub fn venv_python_with(module: &str, package: &str) -> Option<PathBuf> {
    let python = venv().join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    assert!(
        !crate::in_ci(),
        "CI=true but {package} is missing: tests/tooling/setup.sh must install it"
    );
    eprintln!(
        "SKIPPED: {package} is not installed; run ./test.sh (tests/tooling/setup.sh) to install it"
    );
    None
}

/// A program from the test venv, or None outside CI when it is missing (in CI: a failure).
pub fn venv_bin(name: &str) -> Option<PathBuf> {
    let p = venv().join("bin").join(name);
    if p.exists() {
        return Some(p);
    }
    assert!(
        !crate::in_ci(),
        "CI=true but {} is missing: tests/tooling/setup.sh must install it",
        p.display()
    );
    eprintln!(
        "SKIPPED: {} is missing; run ./test.sh (tests/tooling/setup.sh) to install it",
        p.display()
    );
    None
}

fn wait_port(port: u16, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not start on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server process, killed on drop.
pub struct Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Server {
    /// Starts `program args` and waits for its port.
    pub fn start(program: &Path, args: &[&str], port: u16, what: &str) -> Server {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let server = Server { child, port };
        wait_port(port, what);
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's standalone S3 server, or None outside CI when it is not installed.
pub fn moto() -> Option<Server> {
    let bin = venv_bin("moto_server")?;
    let port = free_port();
    Some(Server::start(
        &bin,
        &["-H", "127.0.0.1", "-p", &port.to_string()],
        port,
        "moto_server",
    ))
}

/// The directory of tools built for the tests (tests/tooling/setup.sh).
pub fn tools() -> PathBuf {
    std::env::var_os("EVIDENT_TOOLS")
        .map_or_else(|| PathBuf::from("/var/tmp/evident-tools"), PathBuf::from)
}

/// Access key of the s3s-fs test server.
pub const S3S_ACCESS_KEY: &str = "evident-test";
/// Secret key of the s3s-fs test server.
pub const S3S_SECRET_KEY: &str = "evident-test-secret";

/// s3s-fs (real SigV4, files under `root`), or None outside CI when it is not installed.
pub fn s3s_fs(root: &Path) -> Option<Server> {
    let bin = tools().join("bin/s3s-fs");
    if !bin.exists() {
        assert!(
            !crate::in_ci(),
            "CI=true but {} is missing: tests/tooling/setup.sh must build it",
            bin.display()
        );
        eprintln!(
            "SKIPPED: {} is missing; run ./test.sh (tests/tooling/setup.sh) to build it",
            bin.display()
        );
        return None;
    }
    let port = free_port();
    let args = [
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--access-key",
        S3S_ACCESS_KEY,
        "--secret-key",
        S3S_SECRET_KEY,
        root.to_str().expect("utf8"),
    ];
    Some(Server::start(&bin, &args, port, "s3s-fs"))
}

/// Runs tests/tooling/s3.py (boto3: an S3 client that is not ours).
pub fn s3py(endpoint: &str, args: &[&str]) -> Vec<u8> {
    let python = venv().join("bin/python");
    let script = crate::manifest_dir().join("tooling/s3.py");
    let out = Command::new(python)
        .arg(script)
        .arg(endpoint)
        .args(args)
        .output()
        .expect("s3.py");
    assert!(
        out.status.success(),
        "s3.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The Python HTTP receiver, storing into `dir`.
pub fn http_receiver(dir: &Path) -> Option<Server> {
    let python = crate::python_with_securesystemslib()?;
    let port = free_port();
    let script = crate::manifest_dir().join("tooling/http_receiver.py");
    Some(Server::start(
        &python,
        &[
            script.to_str().expect("utf8"),
            &port.to_string(),
            dir.to_str().expect("utf8"),
        ],
        port,
        "http_receiver.py",
    ))
}

/// What the proxy does with a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Forward to the server.
    Forward = 0,
    /// Refuse: the line is cut (the listener is closed).
    Down = 1,
    /// Answer every request with 503.
    Unavailable = 2,
}

/// A TCP proxy in front of a server, for outages that keep the server's state.
pub struct Proxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    mode: Arc<AtomicU8>,
    listener: Arc<Mutex<Option<TcpListener>>>,
}

impl Proxy {
    /// Starts forwarding 127.0.0.1:<new port> to 127.0.0.1:`target`.
    pub fn start(target: u16) -> Proxy {
        let port = free_port();
        let proxy = Proxy {
            port,
            mode: Arc::new(AtomicU8::new(Mode::Forward as u8)),
            listener: Arc::new(Mutex::new(None)),
        };
        proxy.listen(target);
        proxy
    }

    fn listen(&self, target: u16) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("proxy bind");
        let accept = listener.try_clone().expect("clone listener");
        *self.listener.lock().expect("lock") = Some(listener);
        let mode = self.mode.clone();
        std::thread::spawn(move || {
            for conn in accept.incoming() {
                let Ok(client) = conn else { break };
                match mode.load(Ordering::SeqCst) {
                    1 => break,
                    2 => {
                        std::thread::spawn(move || answer_503(client));
                    }
                    _ => {
                        std::thread::spawn(move || forward(client, target));
                    }
                }
            }
        });
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sets the mode; `Down` closes the listening socket (connection refused).
    pub fn set(&self, mode: Mode, target: u16) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        let mut guard = self.listener.lock().expect("lock");
        match (mode, guard.is_some()) {
            (Mode::Down, true) => {
                if let Some(l) = guard.take() {
                    // Wake the accept loop so it sees Down and exits, then close.
                    let _ = TcpStream::connect(("127.0.0.1", self.port));
                    drop(l);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (Mode::Forward | Mode::Unavailable, false) => {
                drop(guard);
                self.listen(target);
            }
            _ => {}
        }
    }
}

fn forward(client: TcpStream, target: u16) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
        return;
    };
    let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (mut client, mut server) = (client, server);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut server, &mut c2);
    let _ = c2.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

fn answer_503(mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 65536];
    let _ = client.read(&mut buf);
    let body = "<Error><Code>ServiceUnavailable</Code><Message>injected by the test proxy</Message></Error>";
    let _ = write!(
        client,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the openssl CLI is there (installed with apt-get under CI when missing; under
/// CI a missing CLI is a failure).
pub fn openssl_ok() -> bool {
    let ok = || {
        Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok() && crate::in_ci() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "openssl"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    if ok() {
        return true;
    }
    assert!(!crate::in_ci(), "CI=true but the openssl CLI is missing");
    eprintln!("SKIPPED: no openssl CLI; apt-get install openssl");
    false
}

/// A CA and a server certificate for 127.0.0.1 (openssl CLI): (ca.crt, server.crt, server.key).
pub fn pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    sh(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.crt"))
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=evident-test-kubernetes-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]));
    sh(Command::new("openssl")
        .args(["req", "-newkey", "rsa:2048", "-nodes"])
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr"))
        .args(["-subj", "/CN=kube-apiserver"]));
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    sh(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.crt"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("server.crt"))
        .arg("-extfile")
        .arg(p("ext.cnf")));
    (p("ca.crt"), p("server.crt"), p("server.key"))
}

/// tests/tooling/k8s_api.py on 127.0.0.1 with a fresh CA and server certificate under `dir`
/// and `token` as the only accepted bearer token: (server, CA file, token file), or None
/// outside CI when openssl or the test venv is missing.
pub fn k8s_api(dir: &Path, token: &str, extra: &[&str]) -> Option<(Server, PathBuf, PathBuf)> {
    if !openssl_ok() {
        return None;
    }
    let python = venv_bin("python")?;
    let (ca, crt, key) = pki(dir);
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token");
    let port = free_port();
    let script = crate::manifest_dir().join("tooling/k8s_api.py");
    let fixtures = crate::manifest_dir().join("fixtures/k8s");
    let port_s = port.to_string();
    let mut args = vec![
        script.to_str().expect("utf8"),
        &port_s,
        crt.to_str().expect("utf8"),
        key.to_str().expect("utf8"),
        token,
        fixtures.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&python, &args, port, "k8s_api.py");
    Some((server, ca, token_file))
}

/// A real MLflow tracking server (SQLite backend) in its own process group, stopped with
/// the whole group on drop (the server spawns workers).
pub struct Mlflow {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Mlflow {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs tests/tooling/mlflow_seed.py against this server (MLflow's REST API).
    pub fn seed(&self, args: &[&str]) {
        let python = venv().join("bin/python");
        let script = crate::manifest_dir().join("tooling/mlflow_seed.py");
        let out = Command::new(python)
            .arg(script)
            .arg(self.url())
            .args(args)
            .output()
            .expect("run mlflow_seed.py");
        assert!(
            out.status.success(),
            "mlflow_seed.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mlflow {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// `mlflow server` on 127.0.0.1 with a fresh SQLite store, once it answers `/health`
/// (up to 90 s); None outside CI when MLflow is not installed.
pub fn mlflow() -> Option<Mlflow> {
    use std::os::unix::process::CommandExt;
    let bin = venv_bin("mlflow")?;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("mlflow.log")).expect("log file");
    let child = Command::new(bin)
        .args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--backend-store-uri",
            &format!("sqlite:///{}/mlflow.db", dir.path().display()),
            "--default-artifact-root",
            &format!("{}/artifacts", dir.path().display()),
            "--workers",
            "1",
        ])
        .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start mlflow server");
    let mut server = Mlflow {
        child,
        port,
        _dir: dir,
    };
    let start = Instant::now();
    loop {
        if http_get_ok(port, "/health") {
            return Some(server);
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            let log =
                std::fs::read_to_string(server._dir.path().join("mlflow.log")).unwrap_or_default();
            panic!("mlflow server exited with {status}: {log}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "mlflow server did not answer on 127.0.0.1:{port} within 90 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether `GET path` on 127.0.0.1:port answers 200.
fn http_get_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[9..12] == b"200")
}

/// A hostile fake MLflow server (tests/tooling/mlflow_fake.py) in `mode`: `500`,
/// `invalid-json`, `huge` (a 50 MB body) or `silent` (accepts, never answers).
pub fn mlflow_fake(mode: &str) -> Option<Server> {
    let python = venv_bin("python")?;
    let script = crate::manifest_dir().join("tooling/mlflow_fake.py");
    let port = free_port();
    let script = script.to_str().expect("utf8").to_string();
    Some(Server::start(
        &python,
        &[&script, &port.to_string(), mode],
        port,
        "mlflow_fake.py",
    ))
}

/// A local TLS server (`openssl s_server -quiet` with `extra` arguments) on 127.0.0.1; its
/// port is `server.port`.
pub fn tls_server(openssl: &Path, cert: &Path, key: &Path, extra: &[&str]) -> Server {
    let port = free_port();
    let accept = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_server",
        "-accept",
        &accept,
        "-cert",
        cert.to_str().expect("utf8"),
        "-key",
        key.to_str().expect("utf8"),
        "-quiet",
    ];
    args.extend_from_slice(extra);
    Server::start(openssl, &args, port, "openssl s_server")
}
