"""Round trips through ArchiveWriter and ArchiveReader, and interoperability with 7-Zip."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import pyzipper
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backups.archive import (
    FORMAT,
    ArchiveReader,
    ArchiveWriter,
    ArchiveWriterError,
    DuplicateMember,
    UnsafePath,
    generate_password,
)
from backups.archive import writer as writer_module
from backups.archive.crypto import PASSWORD_ALPHABET, counter_blocks, new_keystream

PASSWORD = "test-pass-1234"
SEVEN_ZIP = next((shutil.which(n) for n in ("7zz", "7z", "7za") if shutil.which(n)), None)
needs_7z = pytest.mark.skipif(SEVEN_ZIP is None, reason="7-Zip is not installed (apt-get install -y 7zip)")


class NonSeekableSink(io.RawIOBase):
    """A write-only, non-seekable sink like an S3 multipart upload stream."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("not seekable")

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def text(n: int, seed: int = 0) -> bytes:
    words = [b"alpha", b"beta", b"gamma", b"delta", b"invoice", b"matter", b"client", b"2024"]
    out = bytearray()
    i = seed
    while len(out) < n:
        out += words[(i * 7 + i // 3) % len(words)] + (b"\n" if i % 11 == 0 else b" ")
        i += 1
    return bytes(out[:n])


def write_archive(members: dict[str, bytes], sink: io.RawIOBase | None = None, **manifest: object) -> bytes:
    sink = sink or NonSeekableSink()
    with ArchiveWriter(sink, PASSWORD) as w:
        for name, data in members.items():
            w.add_bytes(name, data)
        w.close(manifest=manifest)
    return bytes(sink.data)  # type: ignore[attr-defined]


def test_round_trip_of_many_kinds_of_members_into_a_non_seekable_sink(tmp_path: Path) -> None:
    on_disk = tmp_path / "photo.jpg"
    on_disk.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(300_000))
    large = text(3 * writer_module.CHUNK_SIZE + 12345)
    expected: dict[str, bytes] = {
        "index.csv": b"title,ou\r\nA,B\r\n",
        "index.html": b"<html></html>",
        "files/empty": b"",
        "files/random": os.urandom(200_000),
        "files/photo": on_disk.read_bytes(),
        "files/large-stream": large,
        "data/docs/document.jsonl": b"".join(b'{"id": %d, "title": "doc"}\n' % i for i in range(50_000)),
    }
    for i in range(40):
        expected[f"files/small-{i:02d}"] = text(i * 97, seed=i)
    sink = NonSeekableSink()
    with ArchiveWriter(sink, PASSWORD, keep_members=True) as w:
        w.add_bytes("index.csv", expected["index.csv"])
        w.add_bytes("index.html", expected["index.html"])
        w.add_bytes("files/empty", b"")
        w.add_bytes("files/random", expected["files/random"])
        w.add_path("files/photo", on_disk)
        w.add_stream("files/large-stream", io.BytesIO(large))
        with w.open_member("data/docs/document.jsonl") as m:
            for i in range(50_000):
                m.write(b'{"id": %d, "title": "doc"}\n' % i)
        for i in range(40):
            w.add_bytes(f"files/small-{i:02d}", expected[f"files/small-{i:02d}"])
        summary = w.close(manifest={"app_version": "1.2.3", "organization": {"name": "ACME ≠ Ltd"}})

    blob = bytes(sink.data)
    assert summary.bytes_written == len(blob)
    assert summary.sha256 == hashlib.sha256(blob).hexdigest()
    assert [m.path for m in summary.members] == list(expected)

    reader = ArchiveReader(io.BytesIO(blob), PASSWORD)
    manifest = reader.verify()
    assert manifest["format"] == FORMAT == "backupsvc/1"
    assert manifest["app_version"] == "1.2.3"
    assert manifest["organization"] == {"name": "ACME ≠ Ltd"}
    listed = {m["path"]: m for m in manifest["members"]}
    assert set(listed) == set(expected)
    for name, data in expected.items():
        assert listed[name]["size"] == len(data)
        assert listed[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert reader.read_bytes(name) == data
    assert reader.names[-1] == "manifest.json"  # written last

    methods = {m.path: m.method for m in summary.members}
    assert methods["files/random"] == 0 and methods["files/photo"] == 0  # incompressible: stored
    assert methods["data/docs/document.jsonl"] == 8 and methods["files/large-stream"] == 8

    out = tmp_path / "out"
    reader.extract_all(out)
    for name, data in expected.items():
        assert (out / name).read_bytes() == data
    assert json.loads((out / "manifest.json").read_bytes()) == manifest
    assert not list(out.rglob("*.part"))


def test_streamed_jsonl_can_be_read_line_by_line() -> None:
    sink = NonSeekableSink()
    with ArchiveWriter(sink, PASSWORD) as w:
        with w.open_member("data/a/b.jsonl") as m:
            for i in range(1000):
                m.write(json.dumps({"i": i}).encode() + b"\n")
        w.close()
    reader = ArchiveReader(io.BytesIO(bytes(sink.data)), PASSWORD)
    with reader.open("data/a/b.jsonl") as f:
        assert [json.loads(line)["i"] for line in f] == list(range(1000))


def test_a_text_wrapper_can_write_a_member() -> None:
    sink = NonSeekableSink()
    with ArchiveWriter(sink, PASSWORD) as w:
        with io.TextIOWrapper(w.open_member("data/a/b.jsonl"), encoding="utf-8", write_through=True) as f:  # type: ignore[arg-type]
            f.write("héllo\n" * 3)
        w.close()
    assert ArchiveReader(io.BytesIO(bytes(sink.data)), PASSWORD).read_bytes("data/a/b.jsonl") == "héllo\n".encode() * 3


def test_members_are_ae2_with_zero_crc_and_the_aes_extra_field() -> None:
    blob = write_archive({"index.csv": text(5000), "files/x": os.urandom(1000)})
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["index.csv", "files/x", "manifest.json"]
    for info in infos:
        assert info.compress_type == 99
        assert info.CRC == 0
        assert info.flag_bits & 0x1 and info.flag_bits & 0x8
        header_id, size, version, vendor, strength, method = struct.unpack("<HHH2sBH", info.extra[-11:])
        assert (header_id, size, version, vendor, strength) == (0x9901, 7, 2, b"AE", 3)
        assert method in (0, 8)
        # Local header: CRC zero as well (and sizes deferred to the data descriptor).
        local = struct.unpack_from("<IHHHHHIII", blob, info.header_offset)
        assert local[0] == 0x04034B50 and local[6] == 0
    # No plaintext leaks: the text content does not appear in the archive.
    assert b"alpha beta" not in blob


def test_another_winzip_aes_implementation_reads_our_archive() -> None:
    members = {"index.csv": text(70_000), "files/x": os.urandom(5000), "files/empty": b""}
    blob = write_archive(members)
    with pyzipper.AESZipFile(io.BytesIO(blob)) as zf:
        zf.setpassword(PASSWORD.encode())
        for name, data in members.items():
            assert zf.read(name) == data


@needs_7z
@pytest.mark.parametrize("force_zip64", [False, True])
def test_7zip_tests_and_extracts_our_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, force_zip64: bool
) -> None:
    if force_zip64:
        # Every size, offset and count goes through zip64 records: the >4 GiB code path, cheaply.
        monkeypatch.setattr(writer_module, "ZIP64_LIMIT", 0)
        monkeypatch.setattr(writer_module, "ZIP64_COUNT_LIMIT", 0)
    members = {
        "index.html": b"<html>catalog</html>",
        "files/empty": b"",
        "files/random": os.urandom(150_000),
        "files/big-text": text(2 * writer_module.CHUNK_SIZE + 7),
        "data/docs/document.jsonl": b'{"id": 1}\n' * 3000,
    }
    archive = tmp_path / "backup.zip"
    archive.write_bytes(write_archive(members))
    ArchiveReader(archive, PASSWORD).verify()
    assert SEVEN_ZIP is not None
    tested = subprocess.run([SEVEN_ZIP, "t", f"-p{PASSWORD}", str(archive)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    out = tmp_path / "x"
    done = subprocess.run([SEVEN_ZIP, "x", f"-p{PASSWORD}", f"-o{out}", str(archive)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    for name, data in members.items():
        assert (out / name).read_bytes() == data
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert {m["path"] for m in manifest["members"]} == set(members)
    wrong = subprocess.run([SEVEN_ZIP, "t", "-pnope", str(archive)], capture_output=True, text=True)
    assert wrong.returncode != 0


def test_writer_memory_stays_bounded_for_a_large_streamed_member() -> None:
    class Endless(io.RawIOBase):
        def __init__(self, total: int) -> None:
            self.left = total
            self.block = os.urandom(1 << 16)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            n = min(len(buffer), self.left, len(self.block))
            buffer[:n] = self.block[:n]
            self.left -= n
            return n

    class Discard(NonSeekableSink):
        def write(self, b: bytes) -> int:  # type: ignore[override]
            return len(b)

    total = 48 * 1024 * 1024
    tracemalloc.start()
    try:
        with ArchiveWriter(Discard(), PASSWORD, keep_members=True) as w:
            w.add_stream("files/huge", io.BufferedReader(Endless(total)))
            summary = w.close()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.members[0].size == total
    # 256 KiB pieces: about 2.6 MB measured (1 MiB pieces: 9.7 MB, and a worker process's peak
    # then grew with the tenant, since only large tenants fill the pipeline's queues).
    assert peak < 6 * 1024 * 1024, peak


def test_progress_is_reported_and_ends_with_the_total() -> None:
    seen: list[int] = []
    with ArchiveWriter(NonSeekableSink(), PASSWORD, progress=seen.append, progress_interval=0) as w:
        for i in range(20):
            w.add_bytes(f"files/{i}", text(10_000, seed=i))
        w.close()
    assert seen and seen == sorted(seen)
    assert seen[-1] >= 200_000  # every member, plus the manifest


def test_writer_refuses_unsafe_duplicate_and_reserved_names() -> None:
    with ArchiveWriter(NonSeekableSink(), PASSWORD) as w:
        for bad in ["/etc/passwd", "../x", "a/../b", "C:/x", "a\\b", "a//b", "", "a/", "files/.."]:
            with pytest.raises(UnsafePath):
                w.add_bytes(bad, b"x")
        w.add_bytes("files/a", b"x")
        with pytest.raises(DuplicateMember):
            w.add_bytes("files/a", b"y")
        with pytest.raises(DuplicateMember):
            w.add_bytes("files/A", b"y")  # collides on case-insensitive file systems
        with pytest.raises(DuplicateMember):
            w.add_bytes("manifest.json", b"{}")
        with pytest.raises(ValueError, match="reserved"):
            w.close(manifest={"members": []})


def test_a_failing_source_fails_the_writer_with_a_clear_error(tmp_path: Path) -> None:
    class Broken(io.RawIOBase):
        calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            Broken.calls += 1
            if Broken.calls > 3:
                raise OSError("disk on fire")
            buffer[: len(buffer)] = bytes(len(buffer))
            return len(buffer)

    with pytest.raises(FileNotFoundError):
        ArchiveWriter(NonSeekableSink(), PASSWORD).add_path("files/x", tmp_path / "missing")
    w = ArchiveWriter(NonSeekableSink(), PASSWORD)
    with pytest.raises(OSError, match="disk on fire"):
        w.add_stream("files/x", Broken())  # type: ignore[arg-type]
    with pytest.raises(ArchiveWriterError):
        w.close()  # the writer knows it is broken: no hang, no half-written archive passed as good

    class FullDisk(NonSeekableSink):
        def write(self, b: bytes) -> int:  # type: ignore[override]
            raise OSError("No space left on device")

    w = ArchiveWriter(FullDisk(), PASSWORD)
    with pytest.raises(ArchiveWriterError, match="No space left"):
        for i in range(50):
            w.add_bytes(f"files/{i}", b"x" * 1000)
        w.close()


def test_portable_keystream_matches_the_fast_one() -> None:
    key = bytes(range(32))
    data = os.urandom(3 * 65536 * 16 + 100)  # crosses the 16-bit counter boundary
    fast, portable = new_keystream(key), new_keystream(key, portable=True)
    out_fast, out_portable = bytearray(), bytearray()
    for size in (1, 15, 17, 4096, 65536 * 16 - 33, 65536 * 16 + 5, len(data)):
        part = data[len(out_fast) : len(out_fast) + size]
        out_fast += fast.update(part)
        out_portable += portable.update(part)
    assert out_fast == out_portable
    assert counter_blocks(65535, 2) == (65535).to_bytes(16, "little") + (65536).to_bytes(16, "little")


def test_generated_passwords_are_grouped_unambiguous_and_unique() -> None:
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        groups = password.split("-")
        assert len(groups) == 7 and all(len(g) == 4 for g in groups)
        assert set(password.replace("-", "")) <= set(PASSWORD_ALPHABET)
    assert not set("il1o0") & set(PASSWORD_ALPHABET)


_name_part = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)
_names = st.lists(_name_part, min_size=1, max_size=3).map(lambda parts: "files/" + "/".join(parts))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    members=st.dictionaries(
        _names,
        st.one_of(st.binary(max_size=3000), st.text(max_size=3000).map(str.encode)),
        max_size=6,
    ),
    compress=st.sampled_from([None, True, False]),
)
def test_any_members_round_trip(members: dict[str, bytes], compress: bool | None) -> None:
    # Names that are a prefix-folder of another ("files/a" and "files/a/b") cannot coexist.
    names = sorted(members, key=str.casefold)
    members = {
        n: members[n]
        for i, n in enumerate(names)
        if not any(o.casefold().startswith(n.casefold() + "/") for o in names)
        and n.casefold() not in {m.casefold() for m in names[:i]}
    }
    sink = NonSeekableSink()
    with ArchiveWriter(sink, PASSWORD, workers=2) as w:
        for name, data in members.items():
            w.add_bytes(name, data, compress=compress)
        w.close()
    reader = ArchiveReader(io.BytesIO(bytes(sink.data)), PASSWORD)
    manifest = reader.verify()
    assert [m["path"] for m in manifest["members"]] == list(members)
    for name, data in members.items():
        assert reader.read_bytes(name) == data


def test_vector_state_cleaner_is_per_thread_and_cheap() -> None:
    import threading
    import time

    from backups.archive.compress import clear_vector_state

    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(2000):
                clear_vector_state()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    start = time.perf_counter()
    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert time.perf_counter() - start < 2
