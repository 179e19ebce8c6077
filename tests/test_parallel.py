"""The process pool from a user's plain script: spawned workers must not re-run it."""
import subprocess
import sys
import textwrap


def test_a_script_without_a_main_guard_can_use_the_process_pool(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent("""
        import functools
        from dexlite_core.parallel import ParallelConfig, parallel_map
        from dexlite_core.seeding import stable_seed

        print("ran", parallel_map(functools.partial(stable_seed, 0), ["a", "b"], ParallelConfig(n_workers=2)))
    """))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("ran") == 1  # the workers did not run the script again
