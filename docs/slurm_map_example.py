"""Map a whole AoI on a SLURM cluster: dask-jobqueue starts the Dask workers as SLURM jobs.

Run this script on a login node (it is the Dask scheduler + the map driver, which needs no
TensorFlow and little memory); each SLURM job runs one Dask worker process that loads the model
once and maps blocks of tiles. The project, the model files and OUT must be on a filesystem that
the compute nodes see at the same paths. If jobs are killed (time limit, preemption), run the
script again: finished tiles are kept and only the missing ones are mapped.

    pip install dask-jobqueue
    python docs/slurm_map_example.py ~/liege_project ~/models/ercnn_drs_s12_pretrained.hdf5 /scratch/liege_map

The same can be done by hand: start a scheduler and workers (``dask scheduler``,
``dask worker tcp://HOST:8786 --nthreads 1 --nworkers 1``) in any job script, then
``ercnn-napari map PROJECT --model M --scheduler tcp://HOST:8786 --out OUT``.
"""

import subprocess
import sys

from dask_jobqueue import SLURMCluster

project, model, out = sys.argv[1:4]

cluster = SLURMCluster(
    cores=8,                     # one worker process per job, TensorFlow uses the job's 8 cores
    processes=1,
    memory="16GB",               # a worker holds one block of tiles + neighbours: ~2 GB at halo 8
    walltime="04:00:00",
    job_extra_directives=["--signal=TERM@120"],
    job_script_prologue=["export TF_NUM_INTRAOP_THREADS=8 TF_NUM_INTEROP_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2"],
)
cluster.scale(jobs=16)           # 16 workers; cluster.adapt(minimum_jobs=1, maximum_jobs=64) also works

subprocess.run([sys.executable, "-m", "ercnn_napari", "map", project, "--model", model, "--all",
                "--scheduler", cluster.scheduler_address, "--out", out, "--progress", "text"], check=True)
cluster.close()
