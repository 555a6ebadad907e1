"""Questions about segments: who is in one (in contact id order, for resumable batches), how many."""
