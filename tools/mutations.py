"""Break the code the way docs/RELIABILITY.md says, run the test that should catch it, restore.

Each mutation replaces one exact piece of a module, runs the tests named for it, expects them to
fail, and writes the original text back (also when interrupted). It refuses to start when the
mutated modules have uncommitted changes, so a kill mid-run can be undone with `git checkout`.

    .venv/bin/python tools/mutations.py            # all of them (about 6 minutes)
    .venv/bin/python tools/mutations.py 8 10       # those whose name starts with 8 or 10
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (name, module, exact text, replacement, tests that must fail)
MUTATIONS = [
    (
        "1 cut short not transient",
        "pipeline/data/sources.py",
        'raise SourceFailed(f"transfer cut short: {received} of {total} bytes", transient=True)',
        'raise SourceFailed(f"transfer cut short: {received} of {total} bytes")',
        "tests/test_download.py::test_a_truncated_transfer_falls_through",
    ),
    (
        "2 5xx not transient",
        "pipeline/data/sources.py",
        "transient = error.code >= 500 or error.code == 429",
        "transient = False",
        "tests/test_download.py::test_a_server_error_then_success_is_retried",
    ),
    (
        "3 failed mirror kept",
        "pipeline/data/download.py",
        "dead[source] = str(failure)",
        "pass",
        "tests/test_download.py::test_a_failing_mirror_is_tried_three_times_then_skipped",
    ),
    (
        "4 stall not whole source",
        "pipeline/data/sources.py",
        'raise SourceFailed("stalled: no data within the read timeout", whole_source=True)',
        'raise SourceFailed("stalled: no data within the read timeout")',
        "tests/test_download.py::test_a_stalled_server_times_out_and_falls_through",
    ),
    (
        "5 checksum removed",
        "pipeline/data/download.py",
        "if actual != file.sha256:",
        "if False:",
        "tests/test_download.py::test_a_corrupted_file_is_rejected_and_nothing_changes",
    ),
    (
        "6 newline message",
        "pipeline/data/download.py",
        'tried = "; ".join(failures)',
        'tried = "\\n".join(failures)',
        "tests/test_download.py::test_404_everywhere_names_each_source_and_the_way_out",
    ),
    (
        "7 stale parts kept",
        "pipeline/data/download.py",
        "    _remove_stale_parts(out_dir)\n",
        "",
        "tests/test_download.py::test_parts_left_by_a_killed_run_are_removed",
    ),
    (
        "8 noise state not checkpointed",
        "pipeline/training/trainer.py",
        'noise_state = {"noise": self.noise}',
        "noise_state = {}",
        "tests/test_train.py::test_kill_9_at_a_random_moment_then_rerun_gives_the_uninterrupted_result tests/test_train.py::test_a_resumed_run_equals_an_uninterrupted_one",
    ),
    (
        "9 save errors unhandled",
        "pipeline/training/checkpoints.py",
        "except (OSError, tf.errors.OpError) as error:",
        "except ZeroDivisionError as error:",
        "tests/test_train.py::test_a_full_disk_is_one_clear_error_and_keeps_the_last_good_checkpoint",
    ),
    (
        "10 no lock",
        "pipeline/training/train.py",
        'with exclusive_lock(lock, f"the checkpoint folder {paths.checkpoints}"):',
        "if lock:",
        "tests/test_train.py::test_a_second_run_on_the_same_checkpoints_refuses_while_the_first_runs",
    ),
    (
        "11 no finiteness check",
        "pipeline/training/loop.py",
        "if not (math.isfinite(d_loss) and math.isfinite(g_loss)):",
        "if False:",
        "tests/test_train.py::test_a_non_finite_loss_names_the_step_and_keeps_the_last_good_checkpoint",
    ),
    (
        "12 no ownership check",
        "pipeline/training/checkpoints.py",
        "if not ours and visible:",
        "if False:",
        "tests/test_train.py::test_a_folder_that_is_not_a_checkpoint_folder_is_never_cleared",
    ),
    (
        "13a float direct write",
        "pipeline/export/export.py",
        "write_atomically(out_path, lambda handle: handle.write(data))",
        "out_path.write_bytes(data)",
        "tests/test_export.py::test_export_killed_while_writing_leaves_the_previous_file",
    ),
    (
        "13b int8 direct write",
        "pipeline/export/quantize.py",
        "write_path_atomically(out_path, write)",
        "write(out_path)",
        "tests/test_export.py::test_export_killed_while_writing_leaves_the_previous_file",
    ),
    (
        "14a no parity check",
        "pipeline/export/checks.py",
        "if not difference <= tolerance:",
        "if False:",
        "tests/test_export.py::test_a_failed_check_writes_nothing",
    ),
    (
        "14b no int8 check",
        "pipeline/export/quantize.py",
        'metrics["int8_quantized"] = metrics["int8_mean_abs_diff"] <= tolerance',
        'metrics["int8_quantized"] = True',
        "tests/test_export.py::test_an_int8_model_outside_its_tolerance_falls_back_to_float32",
    ),
    (
        "15 label ignored in export",
        "pipeline/export/folding.py",
        "bias = tf.matmul(tf.gather(mix, label), b1)",
        "bias = b1[:1]",
        "tests/test_inference.py::test_folded_conditional_equals_keras_for_every_label",
    ),
    (
        "16 morph not blended",
        "pipeline/runtime/traversals.py",
        "mixes.append((1 - t) * weights[k] + t * weights[(k + 1) % points])",
        "mixes.append(weights[k])",
        "tests/test_conditional.py::test_a_morphing_walk_passes_exactly_through_its_digits",
    ),
    (
        "17 label accuracy wrong",
        "pipeline/evaluation/conditioning.py",
        '"label_accuracy": float(np.mean(logits.argmax(axis=1) == requested)),',
        '"label_accuracy": float(np.mean(logits.argmax(axis=1) == requested[::-1])),',
        "tests/test_conditional.py::test_conditioning_measures_on_a_hand_made_case",
    ),
    (
        "18 label range unchecked",
        "pipeline/runtime/sampler.py",
        "        if int(label) not in self.classes:",
        "        if False:",
        "tests/test_conditional.py::test_a_label_outside_the_classes_is_refused",
    ),
    (
        "serve 17 whole file per client",
        "pipeline/serving/serve.py",
        "shutil.copyfileobj(handle, self.wfile, CHUNK_SIZE)",
        "self.wfile.write(handle.read())",
        "tests/test_serve_faults.py::"
        "test_fifty_clients_that_never_read_leave_memory_bounded_and_others_answered",
    ),
    (
        "serve 18 no timeout",
        "pipeline/serving/serve.py",
        "    handler.timeout = timeout",
        "    handler.timeout = None",
        "tests/test_serve_faults.py::test_half_sent_requests_time_out_and_free_their_threads",
    ),
    (
        "serve 19 unbounded",
        "pipeline/serving/http_server.py",
        "        self.slots.acquire()",
        "        pass",
        "tests/test_serve_faults.py::test_no_number_of_clients_runs_more_than_the_bounded_threads",
    ),
    (
        "serve 20 tracebacks",
        "pipeline/serving/http_server.py",
        "    def handle_error(self, request, client_address) -> None:",
        "    def handle_error_unused(self, request, client_address) -> None:",
        "tests/test_serve_faults.py::test_clients_that_hang_up_mid_download_are_no_traceback",
    ),
    (
        "output 21 unchecked in Python",
        "pipeline/runtime/sampler.py",
        "        if not np.isfinite(images).all():",
        "        if False:",
        "tests/test_sampler.py::test_a_model_whose_output_is_not_finite_is_an_error_not_a_grid "
        "tests/test_api.py::test_a_model_whose_output_is_not_finite_is_a_json_500",
    ),
    (
        "output 21 unchecked in JavaScript",
        "web/generator.js",
        "  if (!values.every(Number.isFinite)) {",
        "  if (false) {",
        "tests/test_node.py::test_node_refuses_a_model_whose_output_is_not_finite",
    ),
    (
        "disk 22 free space unchecked",
        "pipeline/storage/files.py",
        "    if size * 1.01 > free:",
        "    if False:",
        "tests/test_write_faults.py::test_a_large_npy_on_a_disk_too_small_is_refused_before_writing",
    ),
    (
        "disk 23 temporary kept",
        "pipeline/storage/files.py",
        "        temporary.unlink(missing_ok=True)\n        if isinstance(error, OSError):",
        "        if isinstance(error, OSError):",
        "tests/test_write_faults.py::test_a_disk_that_fills_mid_write_is_one_line_and_leaves_nothing",
    ),
    (
        "disk 24 no sigterm handler",
        "pipeline/cli/__init__.py",
        "    signal.signal(signal.SIGTERM, _terminated)",
        "    pass",
        "tests/test_write_faults.py::test_sigterm_mid_write_leaves_no_temporary_and_no_output",
    ),
    (
        "input 25 npy size unchecked",
        "pipeline/runtime/image_files.py",
        "    if claimed != available:",
        "    if False:",
        "tests/test_write_faults.py::test_a_header_that_lies_is_refused_before_anything_is_allocated",
    ),
    (
        "disk 26 permissions reset",
        "pipeline/storage/files.py",
        "        os.chmod(temporary, _mode_for(path))",
        "        os.chmod(temporary, default_file_mode())",
        "tests/test_write_faults.py::test_a_replaced_file_keeps_its_permissions",
    ),
    (
        "input 27 noise width unbounded",
        "pipeline/runtime/contract.py",
        "        if not 0 < int(declared) <= MAX_NOISE_DIM:",
        "        if False:",
        "tests/test_hostile_input.py::test_metadata_claiming_an_absurd_noise_width_is_refused",
    ),
    (
        "input 28 run unguarded",
        "pipeline/runtime/sampler.py",
        "        except Exception as error:  # onnxruntime raises its own, unexported exception types\n"
        "            raise ModelOutputError(",
        "        except ZeroDivisionError as error:\n            raise ModelOutputError(",
        "tests/test_hostile_input.py::test_onnxruntime_failing_while_it_runs_is_one_line",
    ),
    (
        "input 29 params decode uncaught",
        "pipeline/config.py",
        "    except UnicodeDecodeError as error:",
        "    except ZeroDivisionError as error:",
        "tests/test_hostile_input.py::test_params_that_are_not_utf8_are_one_line",
    ),
    (
        "input 30 values quoted whole",
        "pipeline/config.py",
        '    return text if len(text) <= limit else f"{text[: limit - 3]}..."',
        "    return text",
        "tests/test_hostile_input.py::test_a_huge_value_is_quoted_short",
    ),
    (
        "fuzz idx header",
        "pipeline/storage/idx.py",
        '    if len(data) < header_size:\n        raise DataFormatError(f"{name}: truncated IDX header ({len(data)} bytes)")\n',
        "",
        "tests/test_fuzz.py::test_idx_reader_on_damaged_idx_files",
    ),
    (
        "fuzz params check",
        "pipeline/config.py",
        "    return section_from(read_params(path).get(name, {}), name, path)\n",
        "    section = read_params(path).get(name, {})\n    section = {k: (v if not isinstance(v, list) else v[0]) for k, v in section.items()}\n    return section_from(section, name, path)\n",
        "tests/test_fuzz.py::test_params_with_wrong_types_and_values",
    ),
    (
        "security pickle",
        "pipeline/training/train.py",
        "import numpy as np\n",
        "import pickle  # noqa\nimport numpy as np\n",
        "tests/test_security.py",
    ),
    (
        "input 31 no decompression cap",
        "pipeline/data/download.py",
        "        if self._handle.tell() + len(data) > self._file.size:",
        "        if False:",
        "tests/test_download.py::test_a_decompression_bomb_stops_at_the_file_size",
    ),
    (
        "input 32 data hash unchecked",
        "pipeline/data/datasets.py",
        "            if actual != recorded[name]:",
        "            if False:",
        "tests/test_train.py::test_training_images_changed_since_their_download_are_refused "
        "tests/test_download.py::test_files_changed_after_their_download_are_refused_by_every_stage",
    ),
    (
        "input 33 out of memory a traceback",
        "pipeline/cli/group.py",
        "        except MemoryError as error:",
        "        except ZeroDivisionError as error:",
        "tests/test_write_faults.py::"
        "test_a_walk_beyond_the_memory_limit_is_one_line_and_leaves_nothing",
    ),
    (
        "input 44 weights digest unchecked",
        "pipeline/runtime/model_bytes.py",
        "    elif stated != _digest(graph):",
        "    elif False:",
        "tests/test_sampler.py::test_flipped_weight_bytes_are_refused_in_one_line",
    ),
    (
        "input 45 no share per address",
        "pipeline/serving/http_server.py",
        "            crowded = self.per_address[client_address[0]] >= MAX_PER_ADDRESS",
        "            crowded = False",
        "tests/test_serve_faults.py::"
        "test_one_address_holds_at_most_its_share_and_the_others_are_served",
    ),
    (
        "input 46 no request deadline",
        "pipeline/serving/http_server.py",
        "                late = [handler for handler, due in self.deadlines.items() if due <= now]",
        "                late = []",
        "tests/test_serve_faults.py::test_a_request_trickled_past_its_deadline_is_cut",
    ),
]


def main(selected: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not selected or any(m[0].startswith(s) for s in selected)]
    modules = sorted({module for _, module, *_ in chosen})
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", *modules], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    if dirty:
        print(f"uncommitted changes in the modules to mutate:\n{dirty}", file=sys.stderr)
        return 2
    survivors = 0
    for name, module, old, new, tests in chosen:
        path = ROOT / module
        original = path.read_text()
        if original.count(old) != 1:
            print(f"{name}: the text to replace is not found once in {module}", file=sys.stderr)
            return 2
        path.write_text(original.replace(old, new))
        try:
            command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
            done = subprocess.run(
                [*command, *tests.split()], cwd=ROOT, capture_output=True, text=True
            )
        finally:
            path.write_text(original)
        caught = done.returncode != 0
        survivors += not caught
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        print(f"{name}: {'caught' if caught else 'NOT CAUGHT'} ({summary})", flush=True)
    print(f"{len(chosen) - survivors} of {len(chosen)} mutations caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
