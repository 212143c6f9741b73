package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"unsafe"
)

// oTmpfile is Linux's O_TMPFILE (__O_TMPFILE | O_DIRECTORY), which the
// syscall package does not define.
const oTmpfile = 0o20000000 | syscall.O_DIRECTORY

const atSymlinkFollow = 0x400 // AT_SYMLINK_FOLLOW

// createUnnamed is Create with an unnamed temporary file (open(2)
// O_TMPFILE), linked to path through /proc/self/fd. ok is false, and
// nothing was made, where the file system or kernel does not support it
// (or /proc is not mounted): Create then uses a named temporary file.
func createUnnamed(path string, data []byte) (ok bool, err error) {
	dir := filepath.Dir(path)
	fd, err := syscall.Open(dir, oTmpfile|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		// EISDIR: a kernel without O_TMPFILE; EOPNOTSUPP: a file system
		// without it. Anything else (a missing or read-only directory) is
		// Create's error too.
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL) {
			return false, nil
		}
		return true, &os.PathError{Op: "create", Path: path, Err: err}
	}
	tmp := os.NewFile(uintptr(fd), path)
	defer tmp.Close()
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	if _, err := os.Stat(proc); err != nil {
		return false, nil // no /proc: the file vanishes as it is closed
	}
	if err = tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(data); err == nil {
			err = tmp.Sync()
		}
	}
	if err != nil {
		return true, err
	}
	if err := linkat(proc, path); err != nil {
		return true, &os.LinkError{Op: "link", Old: "(unnamed temporary file)", New: path, Err: err}
	}
	return true, syncDir(dir)
}

// linkat is linkat(AT_FDCWD, old, AT_FDCWD, new, AT_SYMLINK_FOLLOW).
func linkat(old, new string) error {
	o, err := syscall.BytePtrFromString(old)
	if err != nil {
		return err
	}
	n, err := syscall.BytePtrFromString(new)
	if err != nil {
		return err
	}
	atFdcwd := -100 // AT_FDCWD
	_, _, e := syscall.Syscall6(syscall.SYS_LINKAT, uintptr(atFdcwd), uintptr(unsafe.Pointer(o)), uintptr(atFdcwd), uintptr(unsafe.Pointer(n)), atSymlinkFollow, 0)
	if e != 0 {
		return e
	}
	return nil
}
