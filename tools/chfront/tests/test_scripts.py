"""start.sh / stop.sh: background start waits for /ping and prints the URL, a second start is
a no-op, stop.sh ends the process (SIGTERM) and removes the pid file."""

import os
import shutil
import subprocess
import tempfile
import unittest

from support import CHFRONT_DIR, Client, free_port


def read(path):
    with open(path) as f:
        return f.read()


class Scripts(unittest.TestCase):
    def test_background_start_restart_stop(self):
        tmp = tempfile.mkdtemp(prefix="chfront-scripts-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port = free_port()
        pidfile = os.path.join(tmp, "chfront.pid")
        log = os.path.join(tmp, "chfront.log")
        args = ["--port", str(port), "--data-dir", os.path.join(tmp, "data"), "--pidfile", pidfile, "--log", log]
        start = os.path.join(CHFRONT_DIR, "start.sh")
        stop = os.path.join(CHFRONT_DIR, "stop.sh")
        out = subprocess.run([start, "--background", *args], capture_output=True, text=True, timeout=600)
        self.assertEqual(out.returncode, 0, out.stderr)
        url = f"http://127.0.0.1:{port}"
        self.assertEqual(out.stdout.strip(), url)
        pid = int(read(pidfile))
        try:
            self.assertEqual(Client(url).q("SELECT 1"), "1\n")
            again = subprocess.run([start, "--background", *args], capture_output=True, text=True, timeout=120)
            self.assertEqual((again.returncode, again.stdout.strip()), (0, url), again.stderr)
            self.assertEqual(int(read(pidfile)), pid)
        finally:
            st = subprocess.run([stop, "--pidfile", pidfile], capture_output=True, text=True, timeout=60)
        self.assertEqual(st.returncode, 0, st.stderr)
        self.assertFalse(os.path.exists(pidfile))
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)
        self.assertIn("chfront: stopped", read(log))


if __name__ == "__main__":
    unittest.main()
