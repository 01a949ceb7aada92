/**
 * The escape routes of the confinement suite (test/integration/confinement.redis.test.ts): hostile
 * programs that try, from a read-only kernel, to write to the accelerator, reach the fleet or read
 * its secrets. Each is Python run after test/fixtures/escape/prelude.py and a header of facts the
 * test gives it (the worst case: the attacker knows every port, path, pid and key). Each records its
 * attempts with `attempt(name, fn)`; the test asserts how each attempt ended, and reads the PV with
 * an independent Channel Access client after every route.
 *
 * `control`: what the same program does in a kernel that is NOT confined (PYEXEC_CONFINEMENT=
 * deployment): `write` — the PV takes VALUE; `ok` — the named attempts succeed. It proves that each
 * route works where nothing stops it, so a refusal in the confined kernel is the confinement's doing.
 */

/** Facts the test gives every program (Python literals are built from these). */
export interface EscapeFacts {
  /** The IOC's read-write Channel Access port (the write endpoint). */
  writePort: number;
  /** The IOC's read-only endpoint (what read-only kernels are given). */
  readOnlyPort: number;
  pv: string;
  /** Listening ports of the fleet: Redis, both Jupyter servers, the write kernel's ZMQ ports. */
  fleetPorts: Record<string, number>;
  /** Files a kernel must not read. */
  secretFiles: Record<string, string>;
  /** Another request's execution folder (holds results.json). */
  otherFolder: string;
  /** A pathname Unix socket a fleet process listens on. */
  unixSocket: string;
  /** An abstract Unix socket name (without the leading NUL). */
  abstractSocket: string;
  /** The write kernel's connection info (key included). */
  writeKernel: Record<string, unknown>;
  /** Pids of processes outside the kernel: Jupyter servers, the write kernel, the test process. */
  pids: Record<string, number>;
}

export interface EscapeRoute {
  readonly name: string;
  readonly code: string;
  /** Attempt names that must be refused in the confined kernel, with the errno expected (13
   * EACCES: Landlock; 1 EPERM: capabilities or seccomp; 97 EAFNOSUPPORT: seccomp); `any` when the
   * route fails in a way that has no errno (a timeout, a child's exit status). */
  readonly refused: Record<string, number | 'any'>;
  readonly control?: { readonly write?: boolean; readonly ok?: readonly string[] };
}

/** A child Python program (a string literal in the parent) that does the raw CA write and exits 0 on success. */
const CHILD = String.raw`
CHILD = "\nimport sys\ntry:\n    raw_ca_write(W, PV, VALUE)\nexcept BaseException as e:\n    print('child refused', type(e).__name__, getattr(e, 'errno', None))\n    sys.exit(7)\n"
with open("child.py", "w") as fh:
    fh.write(PRELUDE + "\n" + HEADER + CHILD)
`;

export const ROUTES: readonly EscapeRoute[] = [
  {
    name: 'raw Channel Access (socket + struct) to the write port',
    code: 'attempt("raw_ca", lambda: raw_ca_write(W, PV, VALUE))',
    refused: { raw_ca: 13 },
    control: { write: true },
  },
  {
    name: 'a loopback port scan, then a raw CA write to every Channel Access server that answers',
    code: String.raw`
def scan():
    found = []
    for port in range(1, 65536):
        s = socket.socket()
        s.settimeout(0.2)
        try:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                found.append(port)
        finally:
            s.close()
    return found
def speaks_ca(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
        s.settimeout(0.5)
        s.sendall(struct.pack(">HHHHII", 0, 0, 0, 13, 0, 0))
        head = s.recv(16)
        s.close()
        return len(head) == 16 and struct.unpack(">H", head[:2])[0] == 0
    except OSError:
        return False
open_ports = scan()
ca_servers = [p for p in open_ports if speaks_ca(p)]
ESCAPE["open_ports"] = open_ports
ESCAPE["ca_servers"] = ca_servers
# Writes only to this test's IOC (its two endpoints): other tests on the machine run IOCs too.
for port in ca_servers:
    if port in (W, RO):
        attempt(f"ca_{port}", lambda port=port: raw_ca_write(port, PV, VALUE))
def found():
    if W not in ca_servers:
        raise PermissionError(13, "the scan did not find the write port")
    return True
attempt("write_port_found", found)
`,
    refused: { write_port_found: 13 },
    control: { write: true, ok: ['write_port_found'] },
  },
  {
    name: 'asyncio streams to the write port',
    code: String.raw`
import asyncio, threading
async def go():
    r, w = await asyncio.open_connection("127.0.0.1", W)
    w.close()
box = {}
def in_thread():  # the kernel's own loop runs in this thread: a fresh loop in another
    try:
        asyncio.run(go())
    except BaseException as e:
        box["error"] = e
t = threading.Thread(target=in_thread)
t.start(); t.join()
def result():
    if "error" in box:
        raise box["error"]
    return True
attempt("asyncio", result)
`,
    refused: { asyncio: 13 },
    control: { ok: ['asyncio'] },
  },
  {
    name: 'importlib.reload(caproto.sync.client) with the write port in the environment',
    code: String.raw`
import importlib, os
os.environ["EPICS_CA_SERVER_PORT"] = str(W)
os.environ["EPICS_CA_ADDR_LIST"] = "127.0.0.1"
os.environ["EPICS_CA_AUTO_ADDR_LIST"] = "NO"
import caproto.sync.client as c
c = importlib.reload(c)
attempt("caproto", lambda: c.write(PV, VALUE, notify=True, timeout=3))
`,
    refused: { caproto: 'any' },
    control: { write: true, ok: ['caproto'] },
  },
  {
    name: 'the original subprocess.Popen found through gc, with a fresh _posixsubprocess and LD_PRELOAD',
    code: `${CHILD}
import gc, os, sys
del sys.modules["_posixsubprocess"]
import _posixsubprocess  # a fresh copy of the extension: fork_exec as it was before the guard
Popen = next(o for o in gc.get_objects() if isinstance(o, type) and o.__name__ == "Popen" and o.__module__ == "subprocess")
import subprocess
subprocess._posixsubprocess = _posixsubprocess
env = dict(os.environ, LD_PRELOAD="libc.so.6")
def run():
    p = Popen([sys.executable, "child.py"], env=env)
    if p.wait() != 0:
        raise RuntimeError(f"child exited {p.returncode}")
    return p.returncode
attempt("popen", run)
`,
    refused: { popen: 'any' },
    control: { write: true, ok: ['popen'] },
  },
  {
    name: 'the original ctypes loader (type(ctypes.pythonapi).__mro__[1]) calling libc.system',
    code: `${CHILD}
import ctypes, sys
CDLL = type(ctypes.pythonapi).__mro__[1]
libc = CDLL("libc.so.6")
def run():
    status = libc.system(f"{sys.executable} child.py".encode())
    if status != 0:
        raise RuntimeError(f"system() returned {status}")
    return status
attempt("system", run)
`,
    refused: { system: 'any' },
    control: { write: true, ok: ['system'] },
  },
  {
    name: 'os.posix_spawn from a fresh copy of the posix module',
    code: `${CHILD}
import os, sys
del sys.modules["posix"]
import posix
def run():
    pid = posix.posix_spawn(sys.executable, [sys.executable, "child.py"], dict(os.environ))
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"child status {status}")
attempt("posix_spawn", run)
`,
    refused: { posix_spawn: 'any' },
    control: { write: true, ok: ['posix_spawn'] },
  },
  {
    name: 'an os.fork() child',
    code: String.raw`
import os
def run():
    pid = os.fork()
    if pid == 0:
        try:
            raw_ca_write(W, PV, VALUE)
            os._exit(0)
        except BaseException:
            os._exit(7)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"fork child status {status}")
attempt("fork", run)
`,
    refused: { fork: 'any' },
    control: { write: true, ok: ['fork'] },
  },
  {
    name: 'a thread and a multiprocessing (fork) process',
    code: String.raw`
import threading, multiprocessing
box = {}
def in_thread():
    try:
        box["status"] = raw_ca_write(W, PV, VALUE)
    except BaseException as e:
        box["error"] = e
t = threading.Thread(target=in_thread)
t.start(); t.join()
def thread_result():
    if "error" in box:
        raise box["error"]
    return box["status"]
attempt("thread", thread_result)
def in_process():
    raw_ca_write(W, PV, VALUE)
def run_process():
    p = multiprocessing.get_context("fork").Process(target=in_process)
    p.start(); p.join(20)
    if p.exitcode != 0:
        raise RuntimeError(f"process exit {p.exitcode}")
attempt("multiprocessing", run_process)
`,
    refused: { thread: 13, multiprocessing: 'any' },
    control: { write: true, ok: ['thread', 'multiprocessing'] },
  },
  {
    name: 'libca through the original ctypes loader, with a new CA context on the write port',
    code: String.raw`
import ctypes, os
import epics.ca
CDLL = type(ctypes.pythonapi).__mro__[1]
def run():
    lib = CDLL(epics.ca.find_libca())
    os.environ["EPICS_CA_SERVER_PORT"] = str(W)
    os.environ["EPICS_CA_ADDR_LIST"] = "127.0.0.1"
    lib.ca_context_destroy()
    lib.ca_context_create(1)
    chid = ctypes.c_void_p()
    lib.ca_create_channel(PV.encode(), None, None, 0, ctypes.byref(chid))
    if lib.ca_pend_io(ctypes.c_double(3.0)) != 1:
        raise TimeoutError("channel did not connect")
    value = ctypes.c_double(VALUE)
    lib.ca_array_put(6, 1, chid, ctypes.byref(value))
    if lib.ca_pend_io(ctypes.c_double(3.0)) != 1:
        raise TimeoutError("put not flushed")
    return True
attempt("libca", run)
`,
    refused: { libca: 'any' },
    control: { write: true, ok: ['libca'] },
  },
  {
    name: 'ZeroMQ into the write kernel with its connection info (code execution with write access)',
    code: String.raw`
from jupyter_client import BlockingKernelClient
def run():
    kc = BlockingKernelClient()
    kc.load_connection_info(WRITE_KERNEL)
    kc.start_channels()
    try:
        # Silent, as pyexec's own set-up cells are: the kernel's run gate counts only visible cells.
        kc.execute(f"import epics; epics.caput({PV!r}, {VALUE!r}, wait=True, timeout=5)", silent=True)
        reply = kc.get_shell_msg(timeout=8)
        return reply["content"]["status"]
    finally:
        kc.stop_channels()
attempt("zmq", run)
`,
    refused: { zmq: 'any' },
    control: { write: true, ok: ['zmq'] },
  },
  {
    name: 'TCP to every listening port of the fleet (Redis, Jupyter servers, the write kernel)',
    code: String.raw`
for name, port in FLEET_PORTS.items():
    attempt("port_" + name, lambda port=port: socket.create_connection(("127.0.0.1", port), timeout=3).close())
`,
    refused: { port_redis: 13, port_jupyter_ro: 13, port_jupyter_rw: 13, port_write_kernel_shell: 13 },
    control: { ok: ['port_redis', 'port_jupyter_ro', 'port_jupyter_rw', 'port_write_kernel_shell'] },
  },
  {
    name: 'reading secrets: the Jupyter token, connection files, other processes’ /proc, state and config',
    code: String.raw`
import os
for name, path in SECRET_FILES.items():
    attempt("read_" + name, lambda path=path: len(open(path, "rb").read()))
for name, pid in PIDS.items():
    for part in ("environ", "cmdline", "maps"):
        attempt(f"proc_{name}_{part}", lambda pid=pid, part=part: len(open(f"/proc/{pid}/{part}", "rb").read()))
attempt("list_runtime", lambda: os.listdir(os.path.dirname(SECRET_FILES["write_connection_file"])))
`,
    refused: {
      read_jupyter_server_info: 13,
      read_write_connection_file: 13,
      read_state_file: 13,
      read_config: 13,
      read_repository: 13,
      proc_jupyter_ro_environ: 13,
      proc_jupyter_rw_environ: 13,
      proc_write_kernel_environ: 13,
      proc_write_kernel_maps: 13,
      proc_test_process_environ: 13,
      proc_test_process_cmdline: 13,
      list_runtime: 13,
    },
    control: {
      ok: [
        'read_jupyter_server_info',
        'read_write_connection_file',
        'read_state_file',
        'read_config',
        'proc_write_kernel_environ',
        'proc_test_process_environ',
      ],
    },
  },
  {
    name: "another request's folder: read, rewrite, add, link and symlink into it, symlink out",
    code: String.raw`
import os
attempt("read_other", lambda: open(os.path.join(OTHER, "results.json")).read())
attempt("rewrite_other", lambda: open(os.path.join(OTHER, "results.json"), "w").write('{"forged": true}'))
attempt("add_to_other", lambda: open(os.path.join(OTHER, "notebook.ipynb"), "w").write("{}"))
attempt("hardlink_other", lambda: os.link(os.path.join(OTHER, "results.json"), "stolen.json"))
os.symlink(os.path.join(OTHER, "results.json"), "link.json")
attempt("write_through_symlink", lambda: open("link.json", "w").write('{"forged": true}'))
os.symlink(SECRET_FILES["config"], "config-link")
attempt("read_through_symlink", lambda: open("config-link").read())
attempt("write_own_folder", lambda: open("own.txt", "w").write("mine"))
`,
    refused: {
      read_other: 13,
      rewrite_other: 13,
      add_to_other: 13,
      hardlink_other: 'any',
      write_through_symlink: 13,
      read_through_symlink: 13,
    },
    control: { ok: ['read_other', 'rewrite_other', 'write_through_symlink', 'read_through_symlink'] },
  },
  {
    name: 'persistence: a .pth in site-packages, sitecustomize in the prefix, shared /tmp and /dev/shm',
    code: String.raw`
import site, sys, os
attempt("pth", lambda: open(os.path.join(site.getsitepackages()[0], "zz-escape.pth"), "w").write("import os\n"))
attempt("sitecustomize", lambda: open(os.path.join(sys.base_prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "sitecustomize.py"), "w").write("x = 1\n"))
attempt("tmp", lambda: open("/tmp/pyexec-escape-" + str(os.getpid()), "w").write("x"))
attempt("dev_shm", lambda: open("/dev/shm/pyexec-escape-" + str(os.getpid()), "w").write("x"))
attempt("private_tmp", lambda: __import__("tempfile").NamedTemporaryFile().name)
`,
    refused: { pth: 13, sitecustomize: 13, tmp: 13, dev_shm: 13 },
  },
  {
    name: 'Unix sockets of the fleet (pathname and abstract), raw and packet sockets, io_uring',
    code: String.raw`
import ctypes
def unix(address):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(address)
    s.close()
attempt("unix_path", lambda: unix(UNIX_SOCKET))
attempt("unix_abstract", lambda: unix("\0" + ABSTRACT_SOCKET))
attempt("raw_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).close())
attempt("packet_socket", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close())
libc = type(ctypes.pythonapi).__mro__[1](None, use_errno=True)
def uring():
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(425, 4, params)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return fd
import os
attempt("io_uring", uring)
`,
    refused: { unix_path: 97, unix_abstract: 97, raw_socket: 1, packet_socket: 97, io_uring: 1 },
    control: { ok: ['unix_path', 'unix_abstract', 'raw_socket'] },
  },
  {
    name: 'signals to processes outside the kernel (signal 0: the permission check alone)',
    code: String.raw`
import os
for name, pid in PIDS.items():
    attempt("signal_" + name, lambda pid=pid: os.kill(pid, 0))
attempt("signal_parent", lambda: os.kill(os.getppid(), 0))
`,
    refused: { signal_jupyter_ro: 1, signal_write_kernel: 1, signal_test_process: 1, signal_parent: 1 },
    control: { ok: ['signal_jupyter_ro', 'signal_write_kernel', 'signal_test_process', 'signal_parent'] },
  },
];

/** A Python expression for a JSON value (json.loads of a string literal: true/null stay right). */
const py = (value: unknown) => `_json.loads(${JSON.stringify(JSON.stringify(value))})`;

/** The program of a route: the prelude, the facts, the route, and the report. */
export function escapeProgram(prelude: string, facts: EscapeFacts, route: EscapeRoute, value: number): string {
  const header = [
    `W = ${facts.writePort}`,
    `RO = ${facts.readOnlyPort}`,
    `PV = ${py(facts.pv)}`,
    `VALUE = ${value}`,
    `FLEET_PORTS = ${py(facts.fleetPorts)}`,
    `SECRET_FILES = ${py(facts.secretFiles)}`,
    `OTHER = ${py(facts.otherFolder)}`,
    `UNIX_SOCKET = ${py(facts.unixSocket)}`,
    `ABSTRACT_SOCKET = ${py(facts.abstractSocket)}`,
    `WRITE_KERNEL = ${py(facts.writeKernel)}`,
    `PIDS = ${py(facts.pids)}`,
  ].join('\n');
  return [
    prelude,
    header,
    `HEADER = ${py(`${header}\n`)}`,
    `PRELUDE = ${py(prelude)}`,
    route.code,
    'report()',
    'results = {"escape": ESCAPE}',
  ].join('\n');
}

/** The attempts a program printed (`PYEXEC-ESCAPE {...}` on stdout). */
export function escapeRecord(stdout: string): Record<string, { ok: boolean; errno?: number | null; error?: string }> {
  const line = stdout.split('\n').find((l) => l.startsWith('PYEXEC-ESCAPE '));
  if (!line) throw new Error(`the program printed no record; stdout: ${stdout.slice(-2000)}`);
  return JSON.parse(line.slice('PYEXEC-ESCAPE '.length));
}
