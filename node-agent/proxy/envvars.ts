// Service environment variables, with kubelet's names and selection
// (pkg/kubelet/envvars FromServices, kubelet_pods.go getServiceEnvVarMap):
//
// - which services: those of the pod's namespace when enableServiceLinks is true (the
//   default), and always the "kubernetes" service of the default namespace (a service of
//   the pod's own namespace with the same name wins); headless (clusterIP None) and
//   ExternalName services are skipped;
// - per service, NAME being the name upper-cased with "-" turned into "_":
//     NAME_SERVICE_HOST, NAME_SERVICE_PORT (the first port), NAME_SERVICE_PORT_<PORTNAME>
//     for every named port, and the docker-link variables NAME_PORT (first port, as
//     proto://host:port), NAME_PORT_<port>_<PROTO>, ..._PROTO, ..._PORT, ..._ADDR.
//
// Where the addresses come from is the caller's: kubelet uses spec.clusterIP and the
// service port (the default here, which also skips services without a cluster IP, as
// kubelet does). In user-space mode the agent passes `address`, which gives the node's
// service proxy address and the listener's port for each service port; the variable
// names keep the service port (NAME_PORT_6379_TCP), their values carry the listener's.

type Obj = Record<string, any>;

export interface ServiceAddress {
  host: string;
  port: number;
}

export interface EnvOptions {
  /** The pod's namespace. */
  namespace: string;
  /** pod.spec.enableServiceLinks (unset means true). */
  enableServiceLinks: boolean;
  /**
   * Where pods reach one port of a service; undefined leaves the whole service out (for
   * instance while its listener is not open yet). Default: spec.clusterIP and the port.
   */
  address?: (svc: Obj, port: Obj) => ServiceAddress | undefined;
}

const MASTER_NAMESPACE = "default";
const MASTER_SERVICES = new Set(["kubernetes"]);

/** kubelet's makeEnvVariableName. */
export function envName(s: string): string {
  return s.replace(/-/g, "_").toUpperCase();
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function clusterAddress(svc: Obj, port: Obj): ServiceAddress | undefined {
  const ip = str(svc.spec?.clusterIP);
  if (ip === "" || ip === "None" || typeof port.port !== "number") return undefined;
  return { host: ip, port: port.port };
}

function hostPort(a: ServiceAddress): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** The services a pod in `namespace` sees, by name (getServiceEnvVarMap's selection). */
export function visibleServices(services: Obj[], namespace: string, enableServiceLinks: boolean): Obj[] {
  const byName = new Map<string, Obj>();
  for (const svc of services) {
    const name = str(svc?.metadata?.name);
    const ns = str(svc?.metadata?.namespace) || "default";
    if (!name || !svc.spec) continue;
    if (str(svc.spec.type) === "ExternalName" || svc.spec.clusterIP === "None") continue;
    if (ns === MASTER_NAMESPACE && MASTER_SERVICES.has(name)) {
      if (!byName.has(name)) byName.set(name, svc);
    } else if (ns === namespace && enableServiceLinks) byName.set(name, svc);
  }
  return [...byName.keys()].sort().map((k) => byName.get(k) as Obj);
}

/** The service environment of a pod in o.namespace: name → value. */
export function serviceEnvVars(services: Obj[], o: EnvOptions): Record<string, string> {
  const address = o.address ?? clusterAddress;
  const env: Record<string, string> = {};
  for (const svc of visibleServices(services, o.namespace, o.enableServiceLinks)) {
    const ports = (Array.isArray(svc.spec.ports) ? svc.spec.ports : []).filter((p: unknown) => p && typeof p === "object");
    if (ports.length === 0) continue;
    const addrs = ports.map((p: Obj) => address(svc, p));
    if (addrs.some((a: ServiceAddress | undefined) => a === undefined)) continue;
    const prefix = envName(str(svc.metadata.name));
    env[`${prefix}_SERVICE_HOST`] = addrs[0].host;
    env[`${prefix}_SERVICE_PORT`] = String(addrs[0].port);
    ports.forEach((p: Obj, i: number) => {
      if (str(p.name) !== "") env[`${prefix}_SERVICE_PORT_${envName(p.name)}`] = String(addrs[i].port);
    });
    ports.forEach((p: Obj, i: number) => {
      const a: ServiceAddress = addrs[i];
      const protocol = str(p.protocol) || "TCP";
      const url = `${protocol.toLowerCase()}://${hostPort(a)}`;
      if (i === 0) env[`${prefix}_PORT`] = url;
      const pp = `${prefix}_PORT_${p.port}_${protocol.toUpperCase()}`;
      env[pp] = url;
      env[`${pp}_PROTO`] = protocol.toLowerCase();
      env[`${pp}_PORT`] = String(a.port);
      env[`${pp}_ADDR`] = a.host;
    });
  }
  return env;
}
