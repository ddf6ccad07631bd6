"""Using a trained network: prediction, evaluation, held-out reports, suggestions."""
