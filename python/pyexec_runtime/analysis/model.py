"""What the analysis knows about libraries: control-system writes and reads, and risky operations.

Names are *paths*: how a value is reached from an import. `epics.PV()` is an instance of epics.PV,
`epics.PV().put` its method, `x[]` an element of x. Paths are normalised first (ALIASES), so
`epics.pv.PV`, `epics.get_pv()` and `caproto.threading.pyepics_compat.PV` all become `epics.PV`.
"""

from __future__ import annotations

import functools
import re

# The tables below keep their dense layout (many short names a line: a table a person can scan).
# fmt: off
# Libraries that talk to a control system. A value reached from one of these is "control-system".
CS_ROOTS = frozenset({"epics", "p4p", "caproto", "pvaccess", "pvapy", "tango", "osprey", "ophyd", "bluesky"})

# Path prefixes rewritten to one canonical spelling (longest prefix first at lookup).
ALIASES: dict[str, str] = {
    "PyTango": "tango",
    "caproto.threading.pyepics_compat": "epics",
    "epics.pv.PV": "epics.PV",
    "epics.pv.get_pv": "epics.get_pv",
    "epics.get_pv()": "epics.PV()",
    "epics.motor.Motor": "epics.Motor",
    "epics.device.Device": "epics.Device",
    "epics.pv.caput": "epics.caput",
    "epics.pv.caget": "epics.caget",
    "epics.ca.caput": "epics.caput",
    "osprey.runtime.connector": "osprey.runtime",
    "tango.DeviceProxy": "tango.DeviceProxy",
    "tango.device_proxy.DeviceProxy": "tango.DeviceProxy",
    "pvapy": "pvaccess",
}
for _flavour in ("thread", "asyncio", "cothread", "raw", "gevent", "Qt"):
    ALIASES[f"p4p.client.{_flavour}.Context"] = "p4p.Context"
    ALIASES[f"p4p.server.{_flavour}.SharedPV"] = "p4p.SharedPV"
ALIASES["p4p.client.Context"] = "p4p.Context"
ALIASES["p4p.server.SharedPV"] = "p4p.SharedPV"
for _flavour in ("threading", "asyncio", "curio", "trio"):
    ALIASES[f"caproto.{_flavour}.client.Context"] = "caproto.Context"
    ALIASES[f"caproto.{_flavour}.client.PV"] = "caproto.PV"
ALIASES["caproto.Context().get_pvs()[]"] = "caproto.PV()"

# Calls that write. Paths, after normalisation.
WRITE_CALLS = frozenset({
    "epics.caput", "epics.caput_many", "epics.ca.put", "epics.ca.sg_put", "epics.ca.put_many",
    "epics.PV().put", "epics.autosave.restore_pvs", "epics.ca.libca.ca_array_put", "epics.ca.libca.ca_array_put_callback",
    "epics.ca.libca.ca_put", "epics.ca.libca.ca_put_callback", "epics.ca.libca.ca_sg_array_put",
    "pvaccess.RpcClient().invoke",
    "epics.Motor().move", "epics.Motor().put", "epics.Motor().set_position", "epics.Motor().tweak",
    "epics.Motor().stop", "epics.Motor().restore_state", "epics.Motor().set_field", "epics.Motor().put_field",
    "epics.Device().put", "epics.Device().restore_state",
    "p4p.Context().put", "p4p.Context().rpc", "p4p.SharedPV", "p4p.SharedPV().post", "p4p.SharedPV().open",
    "p4p.server.Server", "p4p.server.StaticProvider", "p4p.server.DynamicProvider",
    "caproto.sync.client.write", "caproto.PV().write", "caproto.server.run", "caproto.server.PVGroup",
    "osprey.runtime.write_channel", "osprey.runtime.write_channels",
    "tango.DeviceProxy().write_attribute", "tango.DeviceProxy().write_attribute_asynch",
    "tango.DeviceProxy().write_attributes", "tango.DeviceProxy().write_attributes_asynch",
    "tango.DeviceProxy().write_read_attribute", "tango.DeviceProxy().write_read_attributes",
    "tango.DeviceProxy().command_inout", "tango.DeviceProxy().command_inout_asynch", "tango.DeviceProxy().write_pipe",
    "tango.AttributeProxy().write", "tango.AttributeProxy().write_asynch", "tango.AttributeProxy().write_read",
})
# Method names that write when called on any instance of a control-system library.
WRITE_METHODS = frozenset({
    "put", "put_many", "move", "mv", "mvr", "set", "set_position", "tweak", "post", "rpc", "write", "write_attribute",
    "stop",
    "write_attribute_asynch", "write_attributes", "command_inout", "command_inout_asynch", "restore_state",
    "set_field", "put_field", "write_channel", "write_channels", "caput", "caput_many",
})
# Methods of pyepics's device classes (epics.devices: Scaler, Mca, Struck, Transform, ...) that put
# to their record's PVs: s.Count(), s.CountTime(1.0), mca.start(). (put, move, stop ... are in
# WRITE_METHODS; the others read, or write local files: s.Read(), st.saveMCAdata(path).)
DEVICE_WRITE_METHODS = frozenset({
    "Count", "CountTime", "CountMode", "OneShotMode", "AutoCountMode", "ContinuousMode", "EnableCalcs", "setCalc",
    "setName", "start", "erase", "Start", "Stop", "Erase", "ExternalMode", "InternalMode", "set_roi", "add_roi",
    "del_roi", "clear_rois", "set_rois", "set_calib", "restore_state", "set_dwelltime", "set_presettime",
    "ExternalTrigger", "InternalTrigger", "set_trigger", "start_acquire", "stop_acquire", "set_value",
})
# Method names that write when called on *any* object (Osprey: `connector.write_channel(...)`).
DISTINCT_WRITE_METHODS = frozenset({"write_channel", "write_channels", "caput", "caput_many"})
DISTINCT_READ_METHODS = frozenset({"read_channel", "read_channels", "caget", "caget_many"})
# Method names that may write when the receiver is unknown in a program that uses a control system.
UNRESOLVED_WRITE_METHODS = frozenset({"put", "put_many", "move", "rpc", "write_attribute", "command_inout"})
# Attributes whose assignment writes, per instance type; "*" means any public attribute (pyepics
# Motor and Device, tango DeviceProxy put on attribute assignment).
WRITE_ATTRIBUTES: dict[str, frozenset[str]] = {
    "epics.PV()": frozenset({"value", "char_value"}),
    "epics.get_pv()": frozenset({"value", "char_value"}),
    "epics.Motor().PV()": frozenset({"value", "char_value"}),
    "epics.Motor().get_pv()": frozenset({"value", "char_value"}),
    "epics.Device().PV()": frozenset({"value", "char_value"}),
    "epics.Device().get_pv()": frozenset({"value", "char_value"}),
    "ophyd.EpicsSignal()": frozenset({"value"}),
    "ophyd.Signal()": frozenset({"value"}),
    "epics.Motor()": frozenset({"*"}),
    "epics.Device()": frozenset({"*"}),
    "tango.DeviceProxy()": frozenset({"*"}),
}
# Library prefixes whose every call is a write (plans move motors).
WRITE_PREFIXES = ("bluesky.plans.", "bluesky.plan_stubs.mv", "bluesky.plan_stubs.mvr", "bluesky.plan_stubs.abs_set",
                  "bluesky.plan_stubs.rel_set", "bluesky.plan_stubs.move_per_step")
# pvaccess.Channel().putInt(...) and friends.
WRITE_METHOD_PREFIX = {"pvaccess.Channel()": "put", "pvaccess.MultiChannel()": "put"}

# Names a kernel may provide without an import (Osprey's kernels pre-import these).
KERNEL_NAMES: dict[str, str] = {
    "epics": "epics", "p4p": "p4p", "caproto": "caproto", "tango": "tango", "PyTango": "tango", "pvaccess": "pvaccess",
    "caput": "epics.caput", "caget": "epics.caget", "caput_many": "epics.caput_many", "caget_many": "epics.caget_many",
    "cainfo": "epics.cainfo", "camonitor": "epics.camonitor", "PV": "epics.PV", "get_pv": "epics.get_pv",
    "write_channel": "osprey.runtime.write_channel", "write_channels": "osprey.runtime.write_channels",
    "read_channel": "osprey.runtime.read_channel", "read_channels": "osprey.runtime.read_channels",
}

# Command-line tools.
CLI_WRITE_TOOLS = frozenset({"caput", "pvput", "caput_many", "tango_admin", "caproto-put", "pvcall", "pvxput",
                             "pvxcall", "burtwb", "dbpf", "caputq"})
CLI_READ_TOOLS = frozenset({"caget", "pvget", "camonitor", "pvmonitor", "cainfo", "pvinfo", "caget_many", "caproto-get",
                            "caproto-monitor", "pvxget", "pvxmonitor", "pvxinfo"})
CLI_WORD = re.compile(r"[^\s;|&`$()<>'\"=]+")
# Programs that run commands or code given to them (a script file, standard input, a pipe): what
# they run is not in the program's text.
CLI_INTERPRETERS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "busybox", "eval", "exec",
                              "source", ".", "su", "parallel", "jupyter", "make", "conda", "uv", "poetry", "pipx",
                              "npx", "tmux", "screen", "expect"})
CLI_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "/bin/sh", "/bin/bash"})
CLI_INTERPRETER_NAME = re.compile(r"^(python|pypy|ipython|perl|ruby|node|lua|php|tclsh|wish|julia|Rscript)[\d.]*$")
# Programs that run the command named after their own options (timeout 5 caget ...).
CLI_WRAPPERS = frozenset({"timeout", "nice", "nohup", "env", "xargs", "sudo", "time", "stdbuf", "ionice", "taskset",
                          "chrt", "ssh", "watch", "unbuffer", "setsid", "flock"})
# Options of those wrappers that take a value (sudo -u opr cmd: the program is cmd).
CLI_WRAPPER_VALUE_OPTIONS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-h", "-p", "-C", "-U", "-r", "-t", "-D"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "env": frozenset({"-u", "-C", "-S", "--unset", "--chdir"}),
    "ssh": frozenset({"-p", "-l", "-i", "-o", "-F", "-J", "-b", "-c", "-D", "-E", "-e", "-I", "-L", "-m", "-O", "-Q",
                      "-R", "-S", "-W", "-w", "-B"}),
    "xargs": frozenset({"-n", "-I", "-L", "-P", "-s", "-d", "-E", "-a", "--max-args", "--max-procs"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
    "flock": frozenset({"-w", "-E", "--timeout"}),
    "watch": frozenset({"-n", "-d", "--interval"}),
    "chrt": frozenset({"-p"}),
    "taskset": frozenset({"-c", "-p"}),
}

# How many words those wrappers take before the program, whatever they are (timeout DURATION cmd).
CLI_WRAPPER_POSITIONALS: dict[str, int] = {"timeout": 1, "flock": 1, "chrt": 1, "ssh": 1}
# Programs that never run their arguments: in a command whose every line one of these starts, a
# write tool's name among the arguments is text (grep caput putlog, git log --grep=caput, which caput).
CLI_INERT = frozenset({"grep", "egrep", "fgrep", "zgrep", "rg", "ag", "git", "ls", "cat", "head", "tail", "wc", "sort",
                       "uniq", "cut", "tr", "less", "more", "file", "stat", "du", "df", "date", "hostname", "which",
                       "whereis", "echo", "printf", "diff", "cmp", "md5sum", "sha256sum", "journalctl", "zcat"})
# Third-party libraries a kernel commonly has: importing one after adding to sys.path is not taken
# for importing the program's own code (see rules: a fixed list, so the verdict does not depend on
# what the analysis's own environment has installed).
KNOWN_LIBRARIES = frozenset({
    "numpy", "scipy", "pandas", "matplotlib", "mpl_toolkits", "epics", "pyepics", "p4p", "caproto", "ophyd",
    "bluesky", "tango", "PyTango", "pvaccess", "pvapy", "h5py", "tables", "xarray", "sklearn", "skimage",
    "statsmodels", "sympy", "numba", "lmfit", "uncertainties", "pint", "yaml", "requests", "httpx", "aiohttp",
    "urllib3", "tqdm", "IPython", "ipykernel", "jupyter_client", "zmq", "PIL", "cv2", "seaborn", "plotly",
    "bokeh", "dateutil", "pytz", "tzdata", "attr", "attrs", "pydantic", "jsonschema", "redis", "sqlalchemy",
    "psycopg2", "pymongo", "databroker", "tiled", "osprey", "pyexec_runtime", "networkx", "joblib", "dill",
    "cloudpickle", "numexpr", "bottleneck", "pyarrow", "polars", "msgpack", "orjson", "ujson", "toml", "tomli",
    "packaging", "setuptools", "pkg_resources", "six", "typing_extensions", "rich", "click", "tabulate",
})

PROCESS_CALLS = re.compile(
    r"^(subprocess\.(run|Popen|call|check_call|check_output|getoutput|getstatusoutput)"
    r"|os\.(system|popen|exec[lv]p?e?|spawn[lv]p?e?|posix_spawnp?|fork|forkpty)"
    r"|posix\.(system|posix_spawnp?|exec[lv]e?|fork)"
    r"|pty\.spawn|asyncio\.create_subprocess_(exec|shell)|multiprocessing\.Process|commands\.getoutput"
    r"|sh\.[A-Za-z_]+|pexpect\.(spawn|run))$"
)
# Calls that run Python source given as a string (analysed as code where the string is known).
DYNAMIC_CODE = {"builtins.exec": "exec()", "builtins.eval": "eval()", "builtins.compile": "compile()",
                "code.InteractiveInterpreter": "code.InteractiveInterpreter", "code.interact": "code.interact()",
                "code.InteractiveInterpreter().runsource": "code.InteractiveInterpreter.runsource()",
                "code.InteractiveInterpreter().runcode": "code.InteractiveInterpreter.runcode()",
                "code.InteractiveConsole().push": "code.InteractiveConsole.push()",
                "code.InteractiveConsole().runsource": "code.InteractiveConsole.runsource()",
                "cProfile.run": "cProfile.run()", "cProfile.runctx": "cProfile.runctx()", "profile.run": "profile.run()",
                "profile.runctx": "profile.runctx()", "timeit.timeit": "timeit.timeit()", "timeit.repeat": "timeit.repeat()",
                "timeit.Timer": "timeit.Timer()", "pdb.run": "pdb.run()", "trace.Trace().run": "trace.Trace.run()"}
# Calls that run code the program's text does not hold: a file, a module found at run time, or code
# carried in data (a pickle, a marshalled code object, a YAML python/object tag).
DATA_CODE = {"runpy.run_path": "runs the Python file", "runpy.run_module": "runs the module",
             "importlib.machinery.SourceFileLoader": "loads the Python file",
             "importlib.util.spec_from_file_location": "loads the Python file",
             "pickle.loads": "unpickles data, which can call any function", "pickle.load": "unpickles a file, "
             "which can call any function", "pickle.Unpickler": "unpickles data, which can call any function",
             "_pickle.loads": "unpickles data, which can call any function",
             "marshal.loads": "loads a code object", "marshal.load": "loads a code object",
             "dill.loads": "unpickles data, which can call any function", "dill.load": "unpickles a file",
             "cloudpickle.loads": "unpickles data, which can call any function",
             "shelve.open": "opens a shelf of pickles", "pandas.read_pickle": "unpickles a file",
             "yaml.unsafe_load": "loads YAML that can call any function",
             "yaml.unsafe_load_all": "loads YAML that can call any function",
             "yaml.load": "loads YAML with a loader that may call functions",
             "yaml.load_all": "loads YAML with a loader that may call functions",
             "jsonpickle.decode": "decodes objects that can call any function",
             "joblib.load": "unpickles a file, which can call any function",
             "torch.load": "unpickles a file, which can call any function",
             "_pickle.load": "unpickles a file, which can call any function",
             "_pickle.Unpickler": "unpickles data, which can call any function",
             "pydoc.locate": "imports and returns the object a string names",
             "pkgutil.resolve_name": "imports and returns the object a string names"}
DYNAMIC_IMPORT = {"builtins.__import__": "__import__()", "importlib.import_module": "importlib.import_module()",
                  "importlib.__import__": "importlib.__import__()", "importlib.reload": "importlib.reload()",
                  "importlib.util.spec_from_file_location": "importlib.util.spec_from_file_location()"}
NATIVE_ROOTS = frozenset({"ctypes", "cffi", "_ctypes"})
# Library calls that call a function over the elements of what follows it (Solver.library_call).
MAPPING_CALLS = frozenset({"map", "imap", "imap_unordered", "map_async", "starmap", "starmap_async", "apply",
                           "applymap", "transform", "agg", "aggregate", "pipe", "vectorize"})
# Library calls that return (some of) their arguments or the elements of their arguments.
PASSTHROUGH_CALLS = frozenset({
    "random.choice", "random.choices", "random.sample", "builtins.max", "builtins.min", "functools.reduce",
    "heapq.nsmallest", "heapq.nlargest", "heapq.heappop", "heapq.heappushpop", "heapq.heapreplace", "heapq.merge",
    "contextlib.nullcontext", "weakref.proxy", "weakref.ref", "copy.copy", "copy.deepcopy", "builtins.next",
    "operator.getitem", "functools.lru_cache()",
    "functools.lru_cache", "functools.cache", "functools.wraps()", "contextlib.closing",
    "contextlib.ExitStack().enter_context", "contextlib.AsyncExitStack().enter_async_context",
})
# Library calls that pass a function the elements of the one tuple that follows it.
ARGUMENT_TUPLE_CALLS = frozenset({"enter", "enterabs", "apply_async", "start_new_thread"})
# Library functions whose arguments are never called back nor handed back (Solver.library_call skips them).
PLAIN_CALL_ROOTS = frozenset({"numpy", "math", "cmath", "statistics", "time", "datetime", "logging", "json", "re",
                              "matplotlib", "scipy", "string", "textwrap", "decimal", "fractions", "hashlib", "base64",
                              "struct", "os"})
PLAIN_BUILTINS = frozenset({"builtins." + n for n in (
    "print", "len", "range", "float", "int", "str", "repr", "round", "abs", "isinstance", "issubclass", "hasattr",
    "bool", "format", "id", "hash", "type", "sum", "any", "all", "callable", "chr", "ord", "hex", "oct", "bin",
    "divmod", "pow", "ascii", "open", "input", "setattr", "delattr", "property", "super", "object", "bytes",
    "bytearray", "complex", "memoryview", "slice", "staticmethod", "classmethod")})
# Libraries whose attributes, reached by a computed name, can run code or reach any module (so the
# control system): getattr(os, name)(...) is dynamic access; getattr(numpy, name)(...) is not.
DYNAMIC_GATEWAYS = frozenset({
    "builtins", "sys", "os", "posix", "importlib", "runpy", "code", "codeop", "types", "inspect", "gc", "ctypes",
    "_ctypes", "cffi", "subprocess", "pty", "multiprocessing", "concurrent", "asyncio", "threading", "functools",
    "operator", "pickle", "marshal", "shelve", "dill", "__main__", "site", "timeit", "cProfile", "profile", "pdb",
    "atexit", "signal", "sched", "yaml", "pexpect", "sh", "commands", "socket", "importlib_metadata", "pkgutil",
    "zipimport", "unittest", "doctest", "typing",
})
NETWORK = re.compile(
    r"^(socket\.(socket|create_connection|create_server|socketpair|fromfd)"
    r"|requests(\.[A-Za-z_]+)*|httpx(\.[A-Za-z_]+)*|aiohttp\.(ClientSession|request)[^.]*(\.[A-Za-z_]+)*"
    r"|urllib\.request\.(urlopen|urlretrieve|build_opener)|urllib3(\.[A-Za-z_]+)*"
    r"|http\.client\.HTTPS?Connection|ftplib\.FTP(_TLS)?|smtplib\.SMTP(_SSL)?|telnetlib\.Telnet"
    r"|paramiko\.SSHClient|websockets?(\.[A-Za-z_]+)*|xmlrpc\.client\.ServerProxy)(\(\))?(\.[A-Za-z_]+)?$"
)
# Network access outside the NETWORK library calls: asyncio streams and loop connections, ZeroMQ.
RAW_NETWORK = re.compile(
    r"^(asyncio\.(open_connection|open_unix_connection|start_server|start_unix_server)"
    r"|asyncio\.(get_event_loop|get_running_loop|new_event_loop)\(\)\.(create_connection|create_server|sock_connect"
    r"|create_datagram_endpoint|create_unix_connection)"
    r"|zmq(\.asyncio)?\.(Context|Socket)(\(\))?(\.instance\(\))?\.socket(\(\))?\.(connect|bind)"
    r"|zmq(\.asyncio)?\.(Context|Socket)(\(\))?(\.instance\(\))?\.socket)$"
)
# Objects of HTTP client libraries whose construction sends nothing (their calls are checked).
HTTP_CLIENT_OBJECTS = re.compile(
    r"^(requests\.(Session|session|Request|PreparedRequest|adapters(\.[A-Za-z_]+)*)|httpx\.(Client|AsyncClient|Timeout"
    r"|Limits|Request|URL)|aiohttp\.ClientSession|urllib3\.(PoolManager|HTTPConnectionPool|HTTPSConnectionPool"
    r"|Timeout|Retry))$"
)
HTTP_MUTATION = re.compile(r"^(requests|httpx|aiohttp|urllib3)(\.[A-Za-z_]+(\(\))?)*\.(post|put|patch|delete)$")

FILE_OPEN = frozenset({"builtins.open", "io.open", "codecs.open", "os.open", "gzip.open", "bz2.open", "lzma.open"})
FILE_MUTATORS = re.compile(
    r"^(os\.(remove|unlink|rmdir|removedirs|rename|renames|replace|mkdir|makedirs|chmod|chown|lchown|symlink|link"
    r"|truncate|utime|mkfifo)|shutil\.(copy|copy2|copyfile|copytree|move|rmtree|make_archive|chown|copymode|copystat)"
    r"|numpy\.(save|savetxt|savez|savez_compressed)|pickle\.dump|json\.dump)$"
)
PATH_WRITE_METHODS = frozenset({"write_text", "write_bytes", "touch", "mkdir", "unlink", "rmdir", "rename", "replace",
                                "symlink_to", "hardlink_to", "chmod"})
SAVE_METHODS = frozenset({"savefig", "to_csv", "to_json", "to_excel", "to_parquet", "to_pickle", "to_hdf", "to_feather",
                          "to_html", "to_latex", "to_sql", "savetxt", "tofile"})

# Environment variables that hold the fleet's secrets (same list as src/python-env.ts).
SECRET_ENV = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|REDIS|JUPYTER|ANTHROPIC|OPENAI|PYEXEC|AWS_|"
                        r"AZURE_|GOOGLE_)", re.I)
SECRET_PATH = re.compile(
    r"(^|/)(\.env(\.[\w-]+)?|config\.ya?ml|pyexec\.ya?ml|\.pyexec(/|$)|secrets?(/|\.|$)|credentials(\.\w+)?|id_rsa|id_ed25519"
    r"|\.netrc|\.pgpass|\.ssh/|\.aws/|\.docker/config\.json|\.kube/config)"
    r"|^/proc/[^/]+/(environ|cmdline|mem)|^/etc/(shadow|gshadow|sudoers)|^/run/secrets|^/var/run/secrets",
    re.I,
)

# Harmless consumers of a write function passed as an argument.
HARMLESS_CONSUMERS = frozenset({
    "builtins.print", "builtins.repr", "builtins.str", "builtins.id", "builtins.type", "builtins.isinstance",
    "builtins.callable", "builtins.help", "builtins.dir", "builtins.hash", "builtins.format", "builtins.hasattr",
    "builtins.getattr", "builtins.vars", "inspect.signature", "inspect.getsource", "inspect.getdoc",
})


# Calls on a control-system object that return data read through it, not another connection object:
# whatever is derived from their result (`caget(...).reshape(2, 2).T`, `pv.get().put(...)`, which is
# numpy's put) is data, neither a read nor a write. Exact names only: any other call on a connection
# object is taken to return one (`dev.get_instantiated_signals()`, `motor.get_pv("VAL")`), so a write
# through what it returns is found.
DATA_CALLS = frozenset({
    "caget", "caget_many", "cainfo", "camonitor", "get", "get_many", "get_all", "read", "info", "monitor",
    "get_with_metadata", "get_ctrlvars", "get_timevars", "get_position", "get_field", "read_channel",
    "read_channels", "read_attribute", "read_attributes", "read_attribute_reply", "read_attributes_reply",
    "read_configuration", "describe", "describe_configuration", "get_attribute_list", "get_command_list",
    "get_property", "read_pipe",
})
# fmt: on

# Severities of findings.
HIGH, MEDIUM, LOW, INFO = "high", "medium", "low", "info"


@functools.lru_cache(maxsize=20_000)
def through_data_call(path: str) -> bool:
    """Whether a call in DATA_CALLS is along path: what follows it is data, not a connection object."""
    for segment in path.split("."):
        i = segment.find("(")
        if i > 0 and segment[:i] in DATA_CALLS:
            return True
    return False


@functools.lru_cache(maxsize=20_000)
def cs_root(path: str) -> bool:
    """Whether a path starts in a control-system library."""
    end = len(path)
    for sep in (".", "(", "["):
        i = path.find(sep)
        if 0 <= i < end:
            end = i
    return path[:end] in CS_ROOTS


def display(path: str) -> str:
    """`epics.PV().put` → `epics.PV.put`, as people write it."""
    return path.replace("()", "").replace("[]", "")


_CODE_HINT = re.compile(
    r"\bimport\b|__import__|\b(epics|caproto|p4p|pvaccess|tango|PyTango|ophyd|bluesky|caput|caget|"
    r"caput_many|PV|get_pv|Motor|Device)\b"
)


@functools.lru_cache(maxsize=20_000)  # asked again for every value late in the solver's fixpoint
def interesting_text(text: str) -> bool:
    """Whether a string (or a pathlib path's text) matters to the checker as it is: it names an EPICS
    command-line tool, may be code that reaches the control system (an import, a control-system
    name: exec, python -c), names a secrets path or an environment variable of the fleet, or is a
    path outside the execution folder. The solver keeps those exact when it widens values late in
    its fixpoint."""
    if text.startswith(("/", "~", "..", "\\")) or SECRET_PATH.search(text) or SECRET_ENV.search(text):
        return True
    if _CODE_HINT.search(text):
        return True
    words = {w.rsplit("/", 1)[-1] for w in CLI_WORD.findall(text.replace("\x00", " "))}
    return not words.isdisjoint(CLI_WRITE_TOOLS) or not words.isdisjoint(CLI_READ_TOOLS)
