/** Thin typed bindings to libbpf.so.1 (object loading, pinning, map access, tc attach) through koffi. */
import { closeSync } from 'node:fs';
import { ffi } from '../native/koffi';
import { errnoError } from '../native/libc';

let lib: ReturnType<typeof bind> | undefined;

function bind() {
  const so = ffi.load('libbpf.so.1');
  // libbpf prints diagnostics to stderr by default; afsteer reports errno itself, so keep stderr to its own JSON log lines.
  so.func('void *libbpf_set_print(void *fn)')(null);
  const openOpts = ffi.struct('afsteer_bpf_object_open_opts', {
    sz: 'size_t',
    object_name: 'const char *',
    relaxed_maps: 'bool',
    pin_root_path: 'const char *',
  });
  return {
    openOptsSize: ffi.sizeof(openOpts),
    openMem: so.func('void *bpf_object__open_mem(const void *buf, size_t sz, const afsteer_bpf_object_open_opts *opts)'),
    objLoad: so.func('int bpf_object__load(void *obj)'),
    objClose: so.func('void bpf_object__close(void *obj)'),
    findProg: so.func('void *bpf_object__find_program_by_name(void *obj, const char *name)'),
    progFd: so.func('int bpf_program__fd(void *prog)'),
    progPin: so.func('int bpf_program__pin(void *prog, const char *path)'),
    objGet: so.func('int bpf_obj_get(const char *path)'),
    objPin: so.func('int bpf_obj_pin(int fd, const char *path)'),
    mapCreate: so.func(
      'int bpf_map_create(int map_type, const char *map_name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const void *opts)',
    ),
    infoByFd: so.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)'),
    mapUpdate: so.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    mapLookup: so.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    mapDelete: so.func('int bpf_map_delete_elem(int fd, const void *key)'),
    mapNextKey: so.func('int bpf_map_get_next_key(int fd, const void *key, void *next)'),
    numCpus: so.func('int libbpf_num_possible_cpus(void)'),
    hookCreate: so.func('int bpf_tc_hook_create(void *hook)'),
    hookDestroy: so.func('int bpf_tc_hook_destroy(void *hook)'),
    tcAttach: so.func('int bpf_tc_attach(const void *hook, void *opts)'),
    tcDetach: so.func('int bpf_tc_detach(const void *hook, const void *opts)'),
    tcQuery: so.func('int bpf_tc_query(const void *hook, void *opts)'),
    testRun: so.func('int bpf_prog_test_run_opts(int prog_fd, void *opts)'),
  };
}

/** The bound library, loaded on first use (so VERSION and config errors never touch it). */
export function libbpf(): ReturnType<typeof bind> {
  if (!lib) {
    try {
      lib = bind();
    } catch (err) {
      throw new Error('cannot load libbpf.so.1 (install the libbpf1 package)', { cause: err });
    }
  }
  return lib;
}

/** Throws an errno error when a libbpf call returned a negative value; returns it otherwise. */
export function check(call: string, rc: number): number {
  if (rc < 0) throw errnoError(call, -rc);
  return rc;
}

/** Opens and loads a BPF ELF object from memory; maps pinned by name go under pinRoot. */
export function openAndLoad(elf: Uint8Array, name: string, pinRoot: string): unknown {
  const b = libbpf();
  const obj = b.openMem(elf, elf.byteLength, {
    sz: b.openOptsSize,
    object_name: name,
    relaxed_maps: false,
    pin_root_path: pinRoot,
  });
  if (!obj) throw errnoError('bpf_object__open_mem', ffi.errno());
  const rc = b.objLoad(obj);
  if (rc < 0) {
    b.objClose(obj);
    throw errnoError('bpf_object__load', -rc);
  }
  return obj;
}

/** Kernel id of the BPF object (program or map) open at fd. */
export function objectId(fd: number): number {
  const info = Buffer.alloc(8);
  const len = [8];
  check('bpf_obj_get_info_by_fd', libbpf().infoByFd(fd, info, len));
  return info.readUInt32LE(4);
}

/** Opens a pinned BPF object (program or map) and returns its fd. */
export function openPinned(path: string): number {
  const fd = libbpf().objGet(path);
  if (fd < 0) throw new Error(`cannot open BPF pin ${path}`, { cause: new Error(`errno ${ffi.errno()}`) });
  return fd;
}

/** Closes BPF fds. */
export function closeFds(...fds: number[]): void {
  for (const fd of fds) if (fd >= 0) closeSync(fd);
}
