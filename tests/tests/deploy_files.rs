//! The deploy files, checked without a container engine (there is none here): they parse; the
//! compose Redis has no plaintext port, requires client certificates, sits on an internal
//! network and publishes nothing — and its exact configuration and healthcheck, run with a real
//! redis-server, behave so; redcloak gets its secrets as files; the Kubernetes manifests set the
//! security context, mount secrets as files and hand redcloak a 0600 key of its own; the
//! Dockerfile's final stage runs as non-root with redcloak as its entrypoint, and the binary
//! needs nothing the runtime image lacks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use redcloak_e2e::scripts::{load_yaml, plain_ping, repo_root, tls_ping, YamlDoc};
use redcloak_e2e::{free_port, random_secret, redcloak_bin, wait_for, Pki};

fn deploy(rel: &str) -> PathBuf {
    repo_root().join("deploy").join(rel)
}

fn compose() -> YamlDoc {
    let mut docs = load_yaml(&deploy("docker-compose.secure.yml"));
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

/// `services.<name>.networks` as names (list or mapping form).
fn networks(service: &YamlDoc) -> Vec<String> {
    let list = service.list("networks");
    if list.is_empty() {
        service.keys("networks")
    } else {
        list.into_iter().map(str::to_owned).collect()
    }
}

fn hardened(name: &str, service: &YamlDoc) {
    assert_eq!(service.get("read_only"), Some("true"), "{name}: read_only");
    assert_eq!(service.list("cap_drop"), ["ALL"], "{name}: cap_drop");
    assert!(
        service
            .list("security_opt")
            .iter()
            .any(|o| o.starts_with("no-new-privileges")),
        "{name}: no-new-privileges"
    );
    let user = service.req("user");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid != "0" && uid != "root" && !uid.is_empty(),
        "{name}: user {user}"
    );
}

#[test]
fn compose_redis_is_tls_only_on_an_internal_network_with_no_published_port() {
    let c = compose();
    let redis = c.sub("services.redis");
    assert!(!redis.has("ports"), "Redis must publish no port");
    assert!(!redis.has("expose"), "Redis exposes nothing extra");
    assert!(!redis.has("network_mode"));
    let nets = networks(&redis);
    assert!(!nets.is_empty());
    for net in &nets {
        assert_eq!(
            c.get(&format!("networks.{net}.internal")),
            Some("true"),
            "Redis's network {net} must be internal: true"
        );
    }
    hardened("redis", &redis);

    let conf = std::fs::read_to_string(deploy("redis/redis.conf")).unwrap();
    let lines: Vec<&str> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    for required in [
        "port 0",
        "tls-port 6380",
        "tls-auth-clients yes",
        "tls-protocols \"TLSv1.2 TLSv1.3\"",
        "include /run/redis/auth.conf",
    ] {
        assert!(
            lines.contains(&required),
            "redis.conf lacks `{required}`:\n{conf}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("requirepass")),
        "no password in a committed file"
    );
    assert!(!lines.iter().any(
        |l| l.starts_with("tls-auth-clients no") || l.starts_with("tls-auth-clients optional")
    ));
    assert!(redis
        .list("volumes")
        .iter()
        .any(|v| v.starts_with("./redis/redis.conf:/usr/local/etc/redis/redis.conf")));

    // The password arrives as a secret file and is never an argument.
    let entrypoint = redis.list("entrypoint").join(" ");
    assert!(
        entrypoint.contains("/run/secrets/redis_password"),
        "{entrypoint}"
    );
    assert!(!entrypoint.contains("--requirepass"), "{entrypoint}");
    assert!(!redis.has("environment"), "Redis gets no secret variables");

    // The healthcheck speaks TLS with a client certificate and AUTH, and wants PONG.
    let health = redis.list("healthcheck.test").join(" ");
    for needle in [
        "--tls",
        "--cacert",
        "--cert",
        "--key",
        "REDISCLI_AUTH",
        "PONG",
    ] {
        assert!(
            health.contains(needle),
            "healthcheck lacks {needle}: {health}"
        );
    }
    // Every secret Redis uses is declared, from a file or from the .env variables.
    for secret in redis.list("secrets") {
        assert!(
            c.has(&format!("secrets.{secret}.file"))
                || c.has(&format!("secrets.{secret}.environment")),
            "secret {secret} is not declared"
        );
    }
}

#[test]
fn compose_redcloak_reads_secret_files_and_waits_for_a_healthy_redis() {
    let c = compose();
    let rc = c.sub("services.redcloak");
    hardened("redcloak", &rc);
    assert_eq!(rc.req("build.dockerfile"), "deploy/Dockerfile");
    assert_eq!(rc.req("depends_on.redis.condition"), "service_healthy");
    assert_eq!(rc.req("environment.REDCLOAK_ENV"), "production");
    assert_eq!(rc.req("environment.REDCLOAK_LISTEN"), "127.0.0.1:6379");
    assert!(rc
        .req("environment.REDIS_URL")
        .starts_with("rediss://redis:"));
    assert!(networks(&rc).contains(&"redis-internal".to_owned()));
    // Secrets as files only: *_FILE and paths under /run/secrets, each a declared secret.
    let secrets = rc.list("secrets");
    for var in [
        "REDIS_PASSWORD_FILE",
        "REDIS_ENCRYPTION_KEY_FILE",
        "REDIS_TLS_CA_CERT",
        "REDIS_TLS_CERT",
        "REDIS_TLS_KEY",
    ] {
        let path = rc.req(&format!("environment.{var}"));
        let name = path
            .strip_prefix("/run/secrets/")
            .unwrap_or_else(|| panic!("{var}={path} is not a secret file"));
        assert!(
            secrets.contains(&name),
            "{var} names {name}, not granted to redcloak"
        );
    }
    for var in ["REDIS_PASSWORD", "REDIS_AUTH", "REDIS_ENCRYPTION_KEY"] {
        assert!(
            !rc.has(&format!("environment.{var}")),
            "{var} must not be a container variable"
        );
    }
    assert_eq!(
        c.req("secrets.redis_password.environment"),
        "REDIS_PASSWORD"
    );
    assert_eq!(
        c.req("secrets.redis_encryption_key.environment"),
        "REDIS_ENCRYPTION_KEY"
    );
    for (secret, file) in [
        ("redis_ca_cert", "ca.crt"),
        ("redis_client_cert", "client.crt"),
        ("redis_client_key", "client.key"),
        ("redis_server_cert", "redis.crt"),
        ("redis_server_key", "redis.key"),
    ] {
        assert!(
            c.req(&format!("secrets.{secret}.file"))
                .ends_with(&format!("/{file}")),
            "{secret}"
        );
    }
    // The application shares redcloak's network namespace: it reaches 127.0.0.1:6379.
    assert_eq!(c.req("services.app.network_mode"), "service:redcloak");
    // Whatever is published anywhere is published on the host's loopback only.
    for service in c.keys("services") {
        for port in c.list(&format!("services.{service}.ports")) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{service} publishes {port} beyond loopback"
            );
        }
    }
}

#[test]
fn compose_dev_override_publishes_redis_tls_port_on_loopback_only() {
    let docs = load_yaml(&deploy("docker-compose.dev.yml"));
    let dev = &docs[0];
    let ports = dev.list("services.redis.ports");
    assert!(!ports.is_empty());
    for port in ports {
        assert!(
            port.starts_with("127.0.0.1:") && port.ends_with(":6380"),
            "{port}"
        );
    }
    // The setup script's Docker mode uses both files, with the variables they interpolate.
    let common = std::fs::read_to_string(repo_root().join("scripts/lib/common.sh")).unwrap();
    for needle in [
        "docker-compose.secure.yml",
        "docker-compose.dev.yml",
        "REDCLOAK_UID",
        "REDCLOAK_CERTS_DIR",
        "REDCLOAK_REDIS_DATA",
    ] {
        assert!(common.contains(needle), "dev_compose lacks {needle}");
    }
}

/// Runs the compose Redis's own entrypoint and healthcheck commands with a real redis-server,
/// the container paths mapped to a temporary directory.
struct ComposeRedis {
    child: std::process::Child,
}

impl Drop for ComposeRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn compose_redis_configuration_and_healthcheck_work_with_a_real_redis_server() {
    let c = compose();
    let redis = c.sub("services.redis");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pki = Pki::generate(&root.join("certs"));
    let password = random_secret(48);
    let secrets = root.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for (name, from) in [
        ("redis_ca_cert", &pki.ca_cert),
        ("redis_server_cert", &pki.server_cert),
        ("redis_server_key", &pki.server_key),
        ("redis_client_cert", &pki.client_cert),
        ("redis_client_key", &pki.client_key),
    ] {
        std::fs::copy(from, secrets.join(name)).unwrap();
    }
    std::fs::write(secrets.join("redis_password"), &password).unwrap(); // no newline, as compose writes it
    for sub in ["run-redis", "data"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let port = free_port();
    let map = |text: &str| -> String {
        text.replace("$$", "$")
            .replace("/run/secrets/", &format!("{}/", secrets.display()))
            .replace("/run/redis/", &format!("{}/run-redis/", root.display()))
            .replace(
                "/usr/local/etc/redis/redis.conf",
                &root.join("redis.conf").display().to_string(),
            )
            .replace("-p 6380", &format!("-p {port}"))
    };
    let conf = std::fs::read_to_string(deploy("redis/redis.conf"))
        .unwrap()
        .replace("bind * -::*", "bind 127.0.0.1") // this machine: loopback only
        .replace("tls-port 6380", &format!("tls-port {port}"))
        .replace("dir /data", &format!("dir {}", root.join("data").display()));
    std::fs::write(
        root.join("redis.conf"),
        map(&conf) + &format!("logfile {}\n", root.join("redis.log").display()),
    )
    .unwrap();

    let entrypoint: Vec<String> = redis.list("entrypoint").into_iter().map(&map).collect();
    assert_eq!(&entrypoint[..2], ["/bin/sh", "-ec"]);
    let server = ComposeRedis {
        child: Command::new("sh")
            .args(&entrypoint[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh"),
    };
    let log = root.join("redis.log");
    assert!(
        wait_for(Duration::from_secs(10), || std::fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("Ready to accept"))),
        "the compose Redis did not start:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let auth = root.join("run-redis/auth.conf");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&auth).unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o600,
        "the generated auth.conf must be owner-only"
    );

    // The healthcheck passes against it (TLS + client certificate + AUTH + PING).
    let health = redis.list("healthcheck.test");
    assert_eq!(health[0], "CMD-SHELL");
    let status = Command::new("sh")
        .args(["-c", &map(health[1])])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|_| {
            redcloak_e2e::missing(
                "sh or redis-cli is missing",
                "redis-tools",
                "sudo apt-get install -y redis-tools",
            )
        });
    assert!(status.success(), "the compose healthcheck failed");
    // A wrong password fails the healthcheck (it checks AUTH, not only that Redis is up).
    std::fs::write(secrets.join("redis_password"), "wrong-password-wrong").unwrap();
    let status = Command::new("sh")
        .args(["-c", &map(health[1])])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the healthcheck ignores AUTH");

    // And Redis itself: no plaintext, no client without a certificate, no client without AUTH.
    assert!(!plain_ping(port).contains("PONG"));
    let no_cert = tls_ping(&pki.ca_cert, None, None, port);
    assert!(
        !no_cert.contains("PONG") && !no_cert.contains("NOAUTH"),
        "{no_cert}"
    );
    let client = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
    assert!(tls_ping(&pki.ca_cert, client, None, port).contains("NOAUTH"));
    assert_eq!(
        tls_ping(&pki.ca_cert, client, Some(&password), port),
        "+PONG"
    );
    drop(server);
}

/// The Dockerfile's stages: (FROM line, instructions).
fn stages(text: &str) -> Vec<(String, Vec<String>)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(t);
            joined.push(std::mem::take(&mut current));
        }
    }
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for ins in joined {
        if ins.to_uppercase().starts_with("FROM ") {
            out.push((ins, Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(ins);
        }
    }
    out
}

#[test]
fn dockerfile_final_stage_is_distroless_non_root_with_redcloak_as_entrypoint() {
    let text = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let stages = stages(&text);
    assert!(stages.len() >= 2, "a multi-stage build");
    let (build_from, build) = &stages[0];
    assert!(build_from.contains("rust:"), "{build_from}");
    assert!(
        build
            .iter()
            .any(|i| i.contains("cargo build --release --locked -p redcloak")),
        "{build:?}"
    );
    let (from, last) = stages.last().unwrap();
    assert!(
        from.contains("distroless") && from.contains("nonroot"),
        "small runtime image without a shell: {from}"
    );
    assert!(
        !last.iter().any(|i| i.to_uppercase().starts_with("RUN ")),
        "the runtime stage has no shell to RUN with: {last:?}"
    );
    let user = last
        .iter()
        .rev()
        .find_map(|i| i.strip_prefix("USER "))
        .expect("a USER in the final stage");
    let uid = user.split(':').next().unwrap().trim();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "numeric non-root USER: {user}"
    );
    let entrypoint = last
        .iter()
        .find_map(|i| i.strip_prefix("ENTRYPOINT "))
        .expect("ENTRYPOINT");
    assert_eq!(
        entrypoint, r#"["/usr/local/bin/redcloak"]"#,
        "exec form, no shell"
    );
    assert!(last
        .iter()
        .any(|i| i.starts_with("COPY --from=build") && i.contains("/usr/local/bin/redcloak")));
    assert!(!last.iter().any(|i| i.contains("EXPOSE 6379")));
    assert!(
        last.iter()
            .any(|i| i.contains("REDCLOAK_LISTEN=127.0.0.1:6379")),
        "loopback listener"
    );
    // Nothing secret can enter the build context.
    let ignore = std::fs::read_to_string(deploy("Dockerfile.dockerignore")).unwrap();
    let rules: Vec<&str> = ignore
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(rules.first(), Some(&"*"), "an allow-list");
    for never in ["!certs", "!.env", "!.run", "!target"] {
        assert!(
            !rules.iter().any(|r| r.starts_with(never)),
            "{never} in the build context"
        );
    }
    // Everything the build stage copies is allowed in.
    for ins in build.iter().filter(|i| i.starts_with("COPY ")) {
        let parts: Vec<&str> = ins.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            let name = src.trim_end_matches('/');
            assert!(
                rules
                    .iter()
                    .any(|r| r.trim_start_matches('!').trim_end_matches('/') == name),
                "COPY {src} is not allowed by Dockerfile.dockerignore"
            );
        }
    }
}

#[test]
fn redcloak_binary_needs_only_what_the_distroless_cc_image_has() {
    let out = Command::new("ldd").arg(redcloak_bin()).output();
    let Ok(out) = out else {
        redcloak_e2e::missing(
            "ldd is not installed",
            "ldd (libc-bin)",
            "sudo apt-get install -y libc-bin",
        )
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let allowed = [
        "linux-vdso.so.1",
        "libgcc_s.so.1",
        "libm.so.6",
        "libc.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
        "linux-vdso.so.1",
    ];
    for line in text.lines() {
        let lib = line.split_whitespace().next().unwrap_or("");
        let name = Path::new(lib).file_name().unwrap().to_string_lossy();
        assert!(
            allowed.contains(&name.as_ref()),
            "redcloak links {name}, which gcr.io/distroless/cc does not provide:\n{text}"
        );
    }
}

fn deployment() -> YamlDoc {
    let docs = load_yaml(&deploy("kubernetes/deployment.yaml"));
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].req("kind"), "Deployment");
    docs[0].clone()
}

/// The value of `name` in a container's `env` list.
fn env_value<'a>(container: &'a YamlDoc, name: &str) -> Option<&'a str> {
    (0..container.len("env")).find_map(|i| {
        (container.get(&format!("env[{i}].name")) == Some(name))
            .then(|| container.get(&format!("env[{i}].value")))
            .flatten()
    })
}

/// The mount of a container whose path is a prefix of `file`: (volume name, mount path).
fn mount_for(container: &YamlDoc, file: &str) -> (String, String) {
    container
        .items("volumeMounts")
        .into_iter()
        .map(|m| (m.req("name").to_owned(), m.req("mountPath").to_owned()))
        .find(|(_, path)| file.starts_with(&format!("{path}/")))
        .unwrap_or_else(|| panic!("{file} is on no mounted volume"))
}

#[test]
fn kubernetes_sidecar_is_hardened_and_reads_secrets_as_files() {
    let d = deployment();
    let pod = d.sub("spec.template.spec");
    assert_eq!(pod.get("securityContext.runAsNonRoot"), Some("true"));
    assert_eq!(
        pod.get("securityContext.seccompProfile.type"),
        Some("RuntimeDefault")
    );
    let pod_user = pod.req("securityContext.runAsUser");
    assert_ne!(pod_user, "0");
    assert_eq!(pod.get("automountServiceAccountToken"), Some("false"));

    let mut all = pod.items("initContainers");
    all.extend(pod.items("containers"));
    for c in &all {
        let name = c.req("name");
        assert_eq!(
            c.get("securityContext.allowPrivilegeEscalation"),
            Some("false"),
            "{name}"
        );
        assert_eq!(
            c.get("securityContext.readOnlyRootFilesystem"),
            Some("true"),
            "{name}"
        );
        assert_eq!(
            c.list("securityContext.capabilities.drop"),
            ["ALL"],
            "{name}"
        );
        assert!(!c.has("securityContext.capabilities.add"), "{name}");
        assert_ne!(c.get("securityContext.privileged"), Some("true"), "{name}");
        assert_ne!(c.get("securityContext.runAsUser"), Some("0"), "{name}");
        assert!(
            c.get("securityContext.runAsNonRoot") == Some("true")
                || pod.get("securityContext.runAsNonRoot") == Some("true"),
            "{name}"
        );
        for r in ["requests.cpu", "requests.memory", "limits.memory"] {
            assert!(c.has(&format!("resources.{r}")), "{name}: resources.{r}");
        }
        // No secret reaches a container as an environment value.
        for i in 0..c.len("env") {
            assert!(
                !c.has(&format!("env[{i}].valueFrom.secretKeyRef")),
                "{name}: a secret as an environment variable"
            );
        }
        assert!(!c.has("envFrom"), "{name}: envFrom");
    }

    let rc = all
        .iter()
        .find(|c| c.req("name") == "redcloak")
        .expect("a redcloak container");
    assert_eq!(env_value(rc, "REDCLOAK_ENV"), Some("production"));
    assert_eq!(env_value(rc, "REDCLOAK_LISTEN"), Some("127.0.0.1:6379"));
    assert!(env_value(rc, "REDIS_URL").is_some_and(|u| u.starts_with("rediss://")));
    for var in ["REDIS_PASSWORD", "REDIS_AUTH", "REDIS_ENCRYPTION_KEY"] {
        assert_eq!(env_value(rc, var), None, "{var} as a value");
    }
    for m in rc.items("volumeMounts") {
        assert_eq!(
            m.get("readOnly"),
            Some("true"),
            "redcloak mounts {} read-only",
            m.req("name")
        );
    }
    let volume = |name: &str| -> YamlDoc {
        pod.items("volumes")
            .into_iter()
            .find(|v| v.req("name") == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    for var in ["REDIS_PASSWORD_FILE", "REDIS_ENCRYPTION_KEY_FILE"] {
        let file = env_value(rc, var).unwrap_or_else(|| panic!("{var} is not set"));
        let (vol, _) = mount_for(rc, file);
        assert!(
            volume(&vol).has("secret.secretName"),
            "{var} is not on a Secret volume"
        );
    }

    // The private key: a copy on a memory emptyDir, made 0600 by a step that runs before
    // redcloak, as the user redcloak runs as (so the file is redcloak's own).
    let key = env_value(rc, "REDIS_TLS_KEY").expect("REDIS_TLS_KEY");
    for var in ["REDIS_TLS_CERT", "REDIS_TLS_CA_CERT"] {
        let file = env_value(rc, var).unwrap_or_else(|| panic!("{var}"));
        assert_eq!(
            mount_for(rc, file).0,
            mount_for(rc, key).0,
            "{var}: one snapshot with the key"
        );
    }
    let (tls_volume, _) = mount_for(rc, key);
    let tls = volume(&tls_volume);
    assert_eq!(tls.get("emptyDir.medium"), Some("Memory"));
    let inits = pod.items("initContainers");
    let rc_index = inits.iter().position(|c| c.req("name") == "redcloak");
    let copier = inits
        .iter()
        .position(|c| {
            c.items("volumeMounts")
                .iter()
                .any(|m| m.req("name") == tls_volume && m.get("readOnly") != Some("true"))
        })
        .expect("an init container that writes the key copy");
    assert!(
        rc_index.is_none_or(|r| copier < r),
        "the copy must run before redcloak"
    );
    let copy = &inits[copier];
    let user_of = |c: &YamlDoc| {
        c.get("securityContext.runAsUser")
            .unwrap_or(pod_user)
            .to_owned()
    };
    assert_eq!(
        user_of(copy),
        user_of(rc),
        "the copy must be owned by redcloak's user"
    );
    let script = copy.list("command").join(" ");
    let key_name = Path::new(key).file_name().unwrap().to_string_lossy();
    assert!(
        script.contains("umask 077") && script.contains(key_name.as_ref()),
        "the key copy is created 0600: {script}"
    );
    // It can read the Secret only through fsGroup: group-readable, never world-readable.
    assert!(pod.has("securityContext.fsGroup"));
    let secret_mount = copy
        .items("volumeMounts")
        .into_iter()
        .find(|m| m.req("name") != tls_volume)
        .expect("the Secret mount of the copy step");
    let secret = volume(secret_mount.req("name"));
    let default_mode: u32 = secret.req("secret.defaultMode").parse().unwrap();
    assert_eq!(
        default_mode & 0o007,
        0,
        "Secret files must not be world-readable"
    );
    assert_eq!(default_mode, 0o440);

    // Probes on the admin endpoint, which listens on loopback like the data listener: the
    // kubelet's httpGet / tcpSocket probes dial the pod IP and could not reach it, so the
    // probes run `redcloak probe` inside the container.
    assert_eq!(
        env_value(rc, "REDCLOAK_ADMIN_LISTEN"),
        Some("127.0.0.1:9121")
    );
    for (probe, endpoint) in [
        ("startupProbe", "livez"),
        ("livenessProbe", "livez"),
        ("readinessProbe", "readyz"),
    ] {
        assert_eq!(
            rc.list(&format!("{probe}.exec.command")),
            ["/usr/local/bin/redcloak", "probe", endpoint],
            "{probe}"
        );
        for unreachable in ["httpGet", "tcpSocket"] {
            assert!(
                !rc.has(&format!("{probe}.{unreachable}")),
                "{probe}.{unreachable}"
            );
        }
    }

    // The application talks to redcloak on the pod's loopback.
    let app = pod
        .items("containers")
        .into_iter()
        .find(|c| c.req("name") == "app")
        .expect("app");
    assert_eq!(env_value(&app, "REDIS_URL"), Some("redis://127.0.0.1:6379"));
}

#[test]
fn cert_manager_certificate_feeds_the_client_tls_secret() {
    let docs = load_yaml(&deploy("kubernetes/certificate.yaml"));
    let cert = docs
        .iter()
        .find(|d| d.get("kind") == Some("Certificate"))
        .expect("a Certificate");
    assert_eq!(cert.req("apiVersion"), "cert-manager.io/v1");
    assert!(cert.list("spec.usages").contains(&"client auth"));
    let hours = |s: &str| -> u64 { s.trim_end_matches('h').parse().unwrap() };
    assert!(
        hours(cert.req("spec.renewBefore")) > 14 * 24,
        "renew before redcloak's 14-day warning"
    );
    assert!(hours(cert.req("spec.duration")) > hours(cert.req("spec.renewBefore")));
    let secret = cert.req("spec.secretName");
    let d = deployment();
    let used = d
        .sub("spec.template.spec")
        .items("volumes")
        .iter()
        .any(|v| v.get("secret.secretName") == Some(secret));
    assert!(used, "the Deployment does not mount {secret}");
    if let Some(issuer) = docs.iter().find(|d| d.get("kind") == Some("Issuer")) {
        assert_eq!(issuer.req("metadata.name"), cert.req("spec.issuerRef.name"));
    }
}

#[test]
fn deploy_docs_explain_what_was_not_run_here() {
    let readme = std::fs::read_to_string(deploy("kubernetes/README.md")).unwrap();
    for needle in [
        "/livez",
        "/readyz",
        "issue 7",
        "0600",
        "fsGroup",
        "cert-manager",
    ] {
        assert!(
            readme.contains(needle),
            "deploy/kubernetes/README.md lacks {needle}"
        );
    }
    let docs = std::fs::read_to_string(repo_root().join("docs/deployment.md")).unwrap();
    assert!(docs.contains("not tested here") || docs.contains("Not tested here"));
}

#[test]
fn kubernetes_key_copy_makes_owner_only_copies_and_follows_a_renewal() {
    use std::os::unix::fs::PermissionsExt;
    let d = deployment();
    let pod = d.sub("spec.template.spec");
    let copier = pod
        .items("initContainers")
        .into_iter()
        .find(|c| c.req("name") == "redcloak-tls")
        .expect("the redcloak-tls copy step");
    // redcloak starts only once the key copy exists.
    let rc = pod
        .items("initContainers")
        .into_iter()
        .find(|c| c.req("name") == "redcloak")
        .expect("redcloak");
    let key = env_value(&rc, "REDIS_TLS_KEY").unwrap().to_owned();
    assert_eq!(
        copier.list("startupProbe.exec.command"),
        ["test", "-s", key.as_str()]
    );

    // Its script, run with this machine's sh, container paths mapped to a temporary directory.
    let command = copier.list("command");
    assert_eq!(&command[..2], ["sh", "-c"]);
    let dir = tempfile::tempdir().unwrap();
    let (src, tls) = (dir.path().join("secrets"), dir.path().join("tls"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&tls).unwrap();
    let write_secret = |generation: u32| {
        for f in ["tls.crt", "tls.key", "ca.crt"] {
            let path = src.join(f);
            std::fs::write(&path, format!("{f} generation {generation}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).unwrap();
        }
    };
    write_secret(1);
    let script = command[2]
        .replace("/secrets/client-tls", &src.display().to_string())
        .replace("\"/tls/", &format!("\"{}/", tls.display()))
        .replace("sleep 30", "sleep 0.1");
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut copy = Guard(
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("sh"),
    );
    let has = |f: &str, generation: u32| {
        std::fs::read_to_string(tls.join(f))
            .is_ok_and(|t| t == format!("{f} generation {generation}\n"))
    };
    assert!(
        wait_for(Duration::from_secs(5), || has("tls.key", 1)
            && has("tls.crt", 1)
            && has("ca.crt", 1)),
        "no copy"
    );
    for f in ["tls.crt", "tls.key", "ca.crt"] {
        let mode = std::fs::metadata(tls.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f} copied with mode {mode:o}");
    }
    // A renewal: the copies follow, and no temporary file is left behind.
    write_secret(2);
    assert!(
        wait_for(Duration::from_secs(5), || has("tls.key", 2)
            && has("tls.crt", 2)
            && has("ca.crt", 2)),
        "the copy did not follow the renewal"
    );
    let names: Vec<String> = std::fs::read_dir(&tls)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    // SIGTERM ends it promptly (the pod's shutdown is not held up).
    redcloak_e2e::scripts::kill(copy.0.id(), "TERM");
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let status = loop {
        if let Some(status) = copy.0.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "the copy step ignores SIGTERM: {status:?}"
    );
}
