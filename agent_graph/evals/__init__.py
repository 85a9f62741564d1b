"""Evaluation: answer quality measured the way the public references measure it (SQuAD
normalisation, exact match, substring accuracy, HotpotQA token F1, retrieval recall@k, citation
precision, abstention), so our figures compare with published ones. Data lives in
`../shared/eval-data/`; its README says which files may be tuned on."""
