"""The TTS engine server: one helper process per synthesising process, so that an engine's start-up is
paid once, not per sentence (the process management behind `mbasr.data.tts.synthesize`).

Starting an engine program costs more than the sentence (espeak-ng spends ~12 of its ~20 ms per sentence
loading 35 shared libraries, its phoneme data and its voice list). So each process that synthesises
keeps one engine server (`_engine_server_main`, standard library only): it loads libespeak-ng and
libflite once, initialised exactly as the `espeak-ng -w` and `flite -o` programs initialise them, forks
one "zygote" per voice that selects that voice, and each zygote forks a fresh child per sentence. Every
sentence thus starts from the same state as a fresh engine program (no state carries over from one
sentence to the next: determinism does not depend on the order of work), and the samples are
byte-identical to the programs' (checked at start-up against the programs, and by tests/test_tts.py; a
mismatch or a missing library falls back to the programs). `MBASR_TTS_SERVER=0` forces the programs.

No process of the tree outlives the one it serves: the server ends when its client closes the request
pipe or dies (end of file on its stdin), a zygote when the server does, a sentence's child when its
zygote does; each of them also asks Linux for a parent-death signal (prctl PR_SET_PDEATHSIG) and
ignores SIGINT (a Ctrl-C reaches the whole process group: only the client decides what it stops).
"""

from __future__ import annotations

import atexit
import inspect
import io
import json
import multiprocessing.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from mbasr.data.tts import ENGINES, TIMEOUT_S, VOICES, Voice, _engine_args, _engine_command, _run


def _engine_server_main(client: int, death_signal: bool) -> None:
    """The engine server's program (its source is run by `python -I -S -c`, so it imports only the
    standard library). Protocol: one JSON request per line on stdin, {"engine", "voice", "rate" and
    "pitch" (espeak-ng) or "stretch" (flite), "text_file", "out", "timeout"}; one JSON answer per line
    on stdout, {"ok", "error"}; the samples are written to `out` as a WAV file, as the programs do.

    Process tree: this server -> one zygote per (engine, voice), which selects the voice -> one child
    per request, forked from the zygote, which speaks and exits. Nothing is synthesised in the server
    or a zygote, so every child starts from the same state. `client` is the pid of the process served;
    `death_signal` asks for SIGTERM when it dies (only when it started us from its main thread: Linux
    sends the signal when the thread that forked us ends)."""
    import ctypes
    import json
    import os
    import shutil
    import signal
    import sys
    import tempfile
    import wave

    libc = ctypes.CDLL(None, use_errno=True)

    def die_with(parent: int, sig: int) -> None:
        """Get `sig` when `parent` dies; end now if it already has (the race before prctl)."""
        if hasattr(libc, "prctl"):
            libc.prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    def terminated(signum, frame):
        raise SystemExit(128 + signum)  # so that the zygotes are closed and the folder removed

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the zygotes and their children
    signal.signal(signal.SIGTERM, terminated)
    if death_signal:
        die_with(client, signal.SIGTERM)
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the engines print must not reach the answer pipe
    shm = "/dev/shm"
    tmp = tempfile.mkdtemp(prefix="mbasr_tts_", dir=shm if os.access(shm, os.W_OK) else None)
    ready: dict = {"tmp": tmp, "engines": {}}

    def load(name: str, short: str, program: str):
        """The shared library `name`: preferably the one beside `program` (so the library is the one
        the program runs on), else the system's."""
        where = shutil.which(program)
        tries = (
            [os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(where))), "lib", name)]
            if where
            else []
        )
        for path in [*tries, name]:
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
        from ctypes.util import find_library

        found = find_library(short)
        if not found:
            raise OSError(f"{name} not found")
        return ctypes.CDLL(found)

    # espeak-ng, set up as its program does for `espeak-ng -w` (src/espeak-ng.c): synchronous output
    # to a callback, the voice chosen by name, then rate and pitch, then the text file's bytes.
    es, es_rate, chunks = None, 0, []
    try:
        es = load("libespeak-ng.so.1", "espeak-ng", "espeak-ng")
        es.espeak_ng_InitializePath(None)
        context = ctypes.c_void_p()
        if es.espeak_ng_Initialize(ctypes.byref(context)) != 0:
            raise OSError("espeak_ng_Initialize failed")
        if es.espeak_ng_InitializeOutput(1, 0, None) != 0:  # ENOUTPUT_MODE_SYNCHRONOUS
            raise OSError("espeak_ng_InitializeOutput failed")
        es_rate = es.espeak_ng_GetSampleRate()
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)

        def on_samples(wav, n, events):
            if wav and n > 0:
                chunks.append(ctypes.string_at(wav, 2 * n))
            return 0

        on_samples_c = callback_type(on_samples)
        es.espeak_SetSynthCallback(on_samples_c)
        es.espeak_ListVoices.restype = ctypes.c_void_p
        es.espeak_ListVoices(None)  # the voice list the program builds on its first voice lookup
        ready["engines"]["espeak-ng"] = ""
    except (OSError, AttributeError) as e:
        es, ready["engines"]["espeak-ng"] = None, f"{type(e).__name__}: {e}"

    # flite, set up as its program does for `flite -voice V --setf duration_stretch=S -f TEXT -o OUT`.
    fl, fl_voices = None, {}
    try:
        fl = load("libflite.so.1", "flite", "flite")
        fl.flite_init()
        fl.feat_set_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_float]
        fl.flite_file_to_speech.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p]
        fl.flite_file_to_speech.restype = ctypes.c_float
        for name in ("kal16", "awb", "rms", "slt"):
            try:
                register = getattr(
                    load(f"libflite_cmu_us_{name}.so.1", f"flite_cmu_us_{name}", "flite"),
                    f"register_cmu_us_{name}",
                )
            except (OSError, AttributeError):
                continue
            register.restype = ctypes.c_void_p
            fl_voices[name] = register(None)
        ready["engines"]["flite"] = "" if fl_voices else "no flite voice library"
    except (OSError, AttributeError) as e:
        fl, ready["engines"]["flite"] = None, f"{type(e).__name__}: {e}"

    def prepare(engine: str, voice: str) -> str:
        """Runs in a new zygote: select the voice; returns an error message or ""."""
        if engine == "espeak-ng" and es is not None:
            return (
                "" if es.espeak_SetVoiceByName(voice.encode()) == 0 else f"espeak-ng: unknown voice {voice!r}"
            )
        if engine == "flite" and fl is not None:
            return "" if voice in fl_voices else f"flite: voice {voice!r} not loaded"
        return f"{engine}: not loaded"

    def speak(req: dict) -> None:
        """Runs in a child of the zygote of req's voice."""
        if req["engine"] == "espeak-ng":
            es.espeak_SetParameter(1, int(req["rate"]), 0)  # espeakRATE
            es.espeak_SetParameter(3, int(req["pitch"]), 0)  # espeakPITCH
            with open(req["text_file"], "rb") as f:
                text = f.read()
            flags = 0x100 | 0x1000  # espeakCHARS_AUTO | espeakPHONEMES | espeakENDPAUSE, as the program
            if es.espeak_Synth(text, len(text) + 1, 0, 1, 0, flags, None, None) != 0:
                raise RuntimeError("espeak_Synth failed")
            if es.espeak_Synchronize() != 0:
                raise RuntimeError("espeak_Synchronize failed")
            with wave.open(req["out"], "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(es_rate)
                w.writeframes(b"".join(chunks))
        else:
            v = fl_voices[req["voice"]]
            features = ctypes.cast(v, ctypes.POINTER(ctypes.c_void_p))[1]  # cst_voice.features
            fl.feat_set_float(features, b"duration_stretch", float(req["stretch"]))
            if not os.path.exists(req["text_file"]):
                raise FileNotFoundError(req["text_file"])
            if fl.flite_file_to_speech(req["text_file"].encode(), v, req["out"].encode()) < 0:
                raise RuntimeError("flite_file_to_speech failed")

    def serve(inp, out, error: str) -> None:
        """A zygote's loop: one forked child per request."""
        for line in inp:
            req = json.loads(line)
            r, w = os.pipe()
            zygote_pid = os.getpid()
            pid = os.fork()
            if pid == 0:
                msg = error
                try:
                    os.close(r)
                    die_with(zygote_pid, signal.SIGKILL)
                    if not msg:
                        signal.alarm(int(req["timeout"]))
                        speak(req)
                except BaseException as e:  # noqa: BLE001 - reported to the caller
                    msg = msg or f"{type(e).__name__}: {e}"
                finally:  # never back into the zygote's loop, whatever happened
                    try:
                        os.write(w, msg.encode("utf-8", "replace"))
                    finally:
                        os._exit(1 if msg else 0)
            os.close(w)
            with os.fdopen(r, "rb") as f:
                msg = f.read().decode("utf-8", "replace")
            _, status = os.waitpid(pid, 0)
            if status != 0 and not msg:
                sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
                msg = f"engine process ended with status {status}" + (f" (signal {sig})" if sig else "")
            out.write(json.dumps({"ok": status == 0, "error": msg}).encode() + b"\n")
            out.flush()

    zygotes: dict = {}  # (engine, voice) -> (pid, request pipe, answer pipe)

    def zygote(key):
        if key not in zygotes:
            req_r, req_w = os.pipe()
            ans_r, ans_w = os.pipe()
            server_pid = os.getpid()
            pid = os.fork()
            if pid == 0:
                try:  # a zygote never returns into the server's code (its `finally` is the server's)
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    die_with(server_pid, signal.SIGKILL)
                    os.close(req_w)
                    os.close(ans_r)
                    answers.close()
                    for _, zw, zr in zygotes.values():
                        zw.close()
                        zr.close()
                    serve(os.fdopen(req_r, "rb"), os.fdopen(ans_w, "wb"), prepare(*key))
                finally:
                    os._exit(0)
            os.close(req_r)
            os.close(ans_w)
            zygotes[key] = (pid, os.fdopen(req_w, "wb"), os.fdopen(ans_r, "rb"))
        return zygotes[key]

    answers.write(json.dumps(ready).encode() + b"\n")
    answers.flush()
    try:
        for line in requests:
            req = json.loads(line)
            key = (req["engine"], req["voice"])
            _, zw, zr = zygote(key)
            try:
                zw.write(line)
                zw.flush()
                answer = zr.readline()
            except OSError:
                answer = b""
            if not answer:
                zygotes.pop(key)
                answer = (
                    json.dumps({"ok": False, "error": "the voice's zygote process ended"}).encode() + b"\n"
                )
            answers.write(answer)
            answers.flush()
    finally:
        for pid, zw, zr in zygotes.values():
            zw.close()
            zr.close()
            os.waitpid(pid, 0)
        shutil.rmtree(tmp, ignore_errors=True)


class EngineServer:
    """The client side of one process's engine server (see the module docstring)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        source = inspect.getsource(_engine_server_main)
        source = f"import sys\n{source}\n_engine_server_main(int(sys.argv[1]), sys.argv[2] == '1')\n"
        main_thread = threading.current_thread() is threading.main_thread()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", source, str(self.pid), str(int(main_thread))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(self.close)
        # A multiprocessing worker ends without atexit; its finalizers still run.
        multiprocessing.util.Finalize(None, self.close, exitpriority=10)
        try:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("mbasr/tools/tts_server.py: the engine server did not start")
            ready = json.loads(line)
            self.tmp = Path(ready["tmp"])
            self.engines = {
                e for e, err in ready["engines"].items() if not err and shutil.which(ENGINES[e][0][0])
            }
            # The libraries must speak exactly as the programs (the fallback, and what the audio cache
            # was keyed on): check one voice per engine.
            for eng, probe in (("espeak-ng", "espeak_us_m"), ("flite", "flite_kal16")):
                if eng in self.engines and not self._same_as_program(VOICES[probe]):
                    self.engines.discard(eng)
                    warnings.warn(
                        f"mbasr/tools/tts_server.py: the {eng} library speaks differently from the {eng} program "
                        "on PATH (two installations?); using the program (slower)",
                        stacklevel=2,
                    )
        except BaseException:
            self.close()
            raise

    def _same_as_program(self, v: Voice) -> bool:
        text = "one two three, check."
        a = sf.read(io.BytesIO(self.speak(v, text, 1.0, 1.0)), dtype="int16")
        with tempfile.TemporaryDirectory(prefix="mbasr_tts_") as tmp:
            text_file, out = Path(tmp) / "text.txt", Path(tmp) / "engine.wav"
            text_file.write_text(text + "\n", encoding="utf-8")
            _run(_engine_command(v, text_file, out, 1.0, 1.0))
            b = sf.read(out, dtype="int16")
        return a[1] == b[1] and np.array_equal(a[0], b[0])

    def speak(self, v: Voice, text: str, speed: float, pitch: float) -> bytes:
        """The engine's WAV file for `text`, as bytes."""
        with self.lock:
            text_file, out = self.tmp / "text.txt", self.tmp / "engine.wav"
            text_file.write_text(text + "\n", encoding="utf-8")
            req = {"engine": v.engine, "voice": v.engine_voice, "text_file": str(text_file), "out": str(out)}
            req |= _engine_args(v, speed, pitch) | {"timeout": TIMEOUT_S}
            try:
                self.proc.stdin.write(json.dumps(req).encode() + b"\n")
                self.proc.stdin.flush()
                answer = self.proc.stdout.readline()
            except OSError:
                answer = b""
            if not answer:
                raise RuntimeError("mbasr/tools/tts_server.py: the engine server ended unexpectedly")
            answer = json.loads(answer)
            if not answer["ok"]:
                raise RuntimeError(
                    f"mbasr/tools/tts_server.py: {v.engine} voice {v.engine_voice!r}: {answer['error']}"
                )
            return out.read_bytes()

    def close(self) -> None:
        if self.proc.poll() is None and os.getpid() == self.pid:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


_SERVER: EngineServer | None = None
_SERVER_FAILED_PID: int | None = None  # the process in which the server could not start
_SERVER_LOCK = threading.Lock()


def server() -> EngineServer | None:
    """This process's engine server (started on first use; a forked process starts its own)."""
    global _SERVER, _SERVER_FAILED_PID
    if os.environ.get("MBASR_TTS_SERVER", "1") == "0":
        return None
    pid = os.getpid()
    with _SERVER_LOCK:
        if _SERVER is not None and _SERVER.pid == pid:
            return _SERVER
        if _SERVER_FAILED_PID == pid:
            return None
        try:
            _SERVER = EngineServer()
        except (OSError, RuntimeError, ValueError) as e:
            _SERVER_FAILED_PID = pid
            warnings.warn(
                f"mbasr/tools/tts_server.py: engine server unavailable ({e}); using the programs",
                stacklevel=2,
            )
            return None
        return _SERVER
