//! A 3-node nats-server cluster (JetStream, R3-capable) on loopback, every link through a
//! [`Proxy`] the test controls.
//!
//! Each node's config is the shipped `nats/cluster/node<N>.conf` with its addresses rewritten:
//! client, cluster and monitoring ports on 127.0.0.1, the store in the rig's temp folder, and
//! each route pointing at the proxy of that directed link (`n1 → n2` has its own proxy, so a
//! partition can cut exactly the links of one node). Clients reach a node through its client
//! proxy, which is also what the node advertises to clients (`client_advertise`), so a client
//! that discovers the other nodes still goes through the proxies. The cluster address a node
//! gossips to its peers (`cluster.advertise`) is a proxy that is always cut: a node never
//! learns a direct route around the proxies.
//!
//! [`NatsCluster::partition`] black-holes one node's route links (both ways) and its client
//! links (silent, sockets open, new ones never answered), [`NatsCluster::cut_off`] closes them
//! and refuses new ones; [`NatsCluster::heal`] restores them. [`NatsCluster::kill9`] and
//! [`NatsCluster::restart`] kill the process and start it again on the same ports and store.
//! What the cluster says of itself (leaders, replicas, connections) is read in `observe.rs`.

mod observe;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use tokio::net::TcpStream;

use crate::{
    TempDir, free_port, log_tail, proxy::Proxy, scaled, servers::BIND_ATTEMPTS, tool,
    workspace_root,
};

/// The nodes of the cluster, as the shipped configs name them.
pub const NODES: usize = 3;

struct Node {
    name: String,
    client_port: u16,
    cluster_port: u16,
    http_port: u16,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    partitioned: bool,
}

/// One directed route link and its proxy.
struct Route {
    from: usize,
    to: usize,
    proxy: Proxy,
}

/// Three nats-server processes in one cluster, killed on Drop.
pub struct NatsCluster {
    nodes: Vec<Node>,
    clients: Vec<Proxy>,
    routes: Vec<Route>,
    _nowhere: Proxy,
    _dir: TempDir,
}

impl NatsCluster {
    /// Start the three nodes and wait until they elected a JetStream meta leader.
    pub async fn start() -> Self {
        let dir = TempDir::new("nats-cluster");
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let name = format!("n{}", i + 1);
            let store = dir.0.join(&name);
            std::fs::create_dir_all(&store)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", store.display()));
            nodes.push(Node {
                conf: store.join("nats-server.conf"),
                log: store.join("nats-server.log"),
                name,
                client_port: free_port(),
                cluster_port: free_port(),
                http_port: free_port(),
                child: None,
                partitioned: false,
            });
        }
        let mut clients = Vec::new();
        for node in &nodes {
            clients.push(Proxy::start(node.client_port).await);
        }
        let mut routes = Vec::new();
        for from in 0..NODES {
            for to in (0..NODES).filter(|&to| to != from) {
                let proxy = Proxy::start(nodes[to].cluster_port).await;
                routes.push(Route { from, to, proxy });
            }
        }
        let nowhere = Proxy::start(free_port()).await;
        nowhere.cut();
        let mut cluster = Self {
            nodes,
            clients,
            routes,
            _nowhere: nowhere,
            _dir: dir,
        };
        for i in 0..NODES {
            let shipped = workspace_root().join(format!("nats/cluster/node{}.conf", i + 1));
            let text = std::fs::read_to_string(&shipped)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", shipped.display()));
            let conf = cluster.node_config(i, &text);
            std::fs::write(&cluster.nodes[i].conf, conf)
                .unwrap_or_else(|e| panic!("cannot write node config: {e}"));
        }
        for i in 0..NODES {
            cluster.launch(i).await;
        }
        cluster.wait_meta_leader().await;
        cluster
    }

    /// Start node `i` from its config and wait until it listens for clients and routes. A port
    /// checked free can be taken before the node binds it (tests run side by side in one
    /// process): then it exits at once, and it is started again on fresh ports, its proxies
    /// following it.
    async fn launch(&mut self, i: usize) {
        for attempt in 1..=BIND_ATTEMPTS {
            self.spawn(i);
            match self.wait_up(i).await {
                Ok(()) => return,
                Err(e) if e.contains("address already in use") && attempt < BIND_ATTEMPTS => {
                    eprintln!(
                        "nats node {} lost a port race (attempt {attempt}); trying other ports",
                        self.nodes[i].name
                    );
                    self.move_node(i);
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// New ports for node `i`: its config is written again and every proxy in front of it
    /// forwards there (the proxies' own ports, which the other nodes and the clients know, stay).
    fn move_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        (node.client_port, node.cluster_port, node.http_port) =
            (free_port(), free_port(), free_port());
        let (client, cluster) = (node.client_port, node.cluster_port);
        self.clients[i].set_target(client);
        for r in self.routes.iter().filter(|r| r.to == i) {
            r.proxy.set_target(cluster);
        }
        let shipped = workspace_root().join(format!("nats/cluster/node{}.conf", i + 1));
        let text = std::fs::read_to_string(&shipped)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", shipped.display()));
        let conf = self.node_config(i, &text);
        std::fs::write(&self.nodes[i].conf, conf)
            .unwrap_or_else(|e| panic!("cannot write node config: {e}"));
    }

    /// Wait (sized for the load) until node `i` accepts clients and routes; an error with its
    /// log's tail if it exits first or the wait runs out.
    async fn wait_up(&mut self, i: usize) -> Result<(), String> {
        let limit = scaled(Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        loop {
            let node = &mut self.nodes[i];
            if let Some(status) = node
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                node.child = None;
                return Err(format!(
                    "nats node {} exited ({status})\n--- last 30 lines of {} ---\n{}",
                    node.name,
                    node.log.display(),
                    log_tail(&node.log, 30)
                ));
            }
            let up =
                |port: u16| async move { TcpStream::connect(("127.0.0.1", port)).await.is_ok() };
            if up(node.client_port).await && up(node.cluster_port).await {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "timed out after {limit:?} waiting for nats node {} to listen\n--- last 30 lines of {} ---\n{}",
                    node.name,
                    node.log.display(),
                    log_tail(&node.log, 30)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The shipped config of node `i` with this rig's addresses. Panics (naming the file's
    /// line) when the shipped config no longer has the shape this rewrites.
    fn node_config(&self, i: usize, shipped: &str) -> String {
        let node = &self.nodes[i];
        let mut out = String::new();
        let mut rewrote = Vec::new();
        let mut in_cluster = false;
        let mut in_routes = false;
        for line in shipped.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with("cluster {") {
                in_cluster = true;
            }
            if in_cluster && trimmed.starts_with("routes: [") {
                in_routes = true;
                out.push_str(line);
                out.push('\n');
                continue;
            }
            if in_routes {
                if trimmed == "]" {
                    in_routes = false;
                    for route in self.routes.iter().filter(|r| r.from == i) {
                        out.push_str(&format!("    nats://127.0.0.1:{}\n", route.proxy.port()));
                    }
                    rewrote.push("routes");
                    out.push_str(line);
                    out.push('\n');
                }
                // The shipped peers (`nats://nX:6222`) are replaced by the proxies above.
                continue;
            }
            let rewritten = match trimmed {
                "listen: 0.0.0.0:4222" => {
                    rewrote.push("listen");
                    format!(
                        "listen: 127.0.0.1:{}\nclient_advertise: \"127.0.0.1:{}\"",
                        node.client_port,
                        self.clients[i].port()
                    )
                }
                "http: 0.0.0.0:8222" => {
                    rewrote.push("http");
                    format!("http: 127.0.0.1:{}", node.http_port)
                }
                "store_dir: \"/var/lib/nats\"" => {
                    rewrote.push("store_dir");
                    let store = self.nodes[i].conf.with_file_name("js");
                    format!("  store_dir: \"{}\"", store.display())
                }
                "listen: 0.0.0.0:6222" => {
                    rewrote.push("cluster listen");
                    format!(
                        "  listen: 127.0.0.1:{}\n  advertise: \"127.0.0.1:{}\"",
                        node.cluster_port,
                        self._nowhere.port()
                    )
                }
                _ => line.to_owned(),
            };
            out.push_str(&rewritten);
            out.push('\n');
        }
        for want in ["listen", "http", "store_dir", "cluster listen", "routes"] {
            assert!(
                rewrote.contains(&want),
                "nats/cluster/node{}.conf no longer has the shape the cluster rig rewrites (its {want} line): update tests/src/cluster.rs",
                i + 1
            );
        }
        out
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", node.log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", node.log.display()));
        let child = Command::new(tool("nats-server"))
            .arg("-c")
            .arg(&node.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server {}: {e}", node.name));
        node.child = Some(child);
    }

    /// `NATS_URL` for the fleet: every node's client proxy, comma-separated.
    pub fn client_urls(&self) -> String {
        self.clients
            .iter()
            .map(|p| format!("nats://127.0.0.1:{}", p.port()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A client of the test's own, connected straight to the healthy nodes (not through the
    /// proxies: the test observes, it is not under test).
    pub async fn client(&self) -> async_nats::Client {
        let urls: Vec<async_nats::ServerAddr> = self
            .healthy()
            .filter_map(|i| {
                format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
                    .parse()
                    .ok()
            })
            .collect();
        async_nats::connect(urls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the cluster: {e}"))
    }

    /// The nodes running and not partitioned.
    fn healthy(&self) -> impl Iterator<Item = usize> + '_ {
        (0..NODES).filter(|&i| self.nodes[i].child.is_some() && !self.nodes[i].partitioned)
    }

    /// The node's server name (`n1`, `n2`, `n3`).
    pub fn name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    /// The node whose server name is `name`.
    pub fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Every node's pid (`None` while killed).
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.nodes
            .iter()
            .map(|n| n.child.as_ref().map(Child::id))
            .collect()
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> Vec<PathBuf> {
        self.nodes.iter().map(|n| n.log.clone()).collect()
    }

    /// kill -9 the node (its store survives for [`Self::restart`]).
    pub fn kill9(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the node again on its ports and store, once it accepts connections.
    pub async fn restart(&mut self, node: usize) {
        self.kill9(node);
        self.launch(node).await;
    }

    /// Partition `node`: its routes to and from the others, both ways, and its clients' links
    /// go silent (black-holed: sockets stay open, nothing passes, new connections are never
    /// answered), as in a real network partition, until [`Self::heal`]. Its peers and its
    /// clients notice by their own timeouts.
    pub fn partition(&mut self, node: usize) {
        self.break_links(node, Proxy::black_hole);
    }

    /// Cut `node` off: every link of its (routes both ways, clients) is closed, and new ones
    /// are refused, until [`Self::heal`].
    pub fn cut_off(&mut self, node: usize) {
        self.break_links(node, Proxy::cut);
    }

    fn break_links(&mut self, node: usize, how: fn(&Proxy)) {
        how(&self.clients[node]);
        for r in self
            .routes
            .iter()
            .filter(|r| r.from == node || r.to == node)
        {
            how(&r.proxy);
        }
        self.nodes[node].partitioned = true;
    }

    /// Restore every link of `node` (black-holed connections resume).
    pub fn heal(&mut self, node: usize) {
        for r in self
            .routes
            .iter()
            .filter(|r| r.from == node || r.to == node)
        {
            r.proxy.heal();
        }
        self.clients[node].heal();
        self.nodes[node].partitioned = false;
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..NODES {
            self.kill9(i);
        }
    }
}
