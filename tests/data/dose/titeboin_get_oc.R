# Reference operating characteristics of TITE-BOIN from R TITEgBOIN 0.4.0
# get_oc_TITE_QuasiBOIN (TITE = TRUE) (tests/data/dose/titeboin_get_oc.json; compared in
# tests/test_dose_reference_tite.py).
#
# Run: Rscript tests/data/dose/titeboin_get_oc.R TITEGBOIN_R_DIR [NTRIAL] > tests/data/dose/titeboin_get_oc.json
# where TITEGBOIN_R_DIR holds the R/ sources of CRAN TITEgBOIN 0.4.0 (github.com/cran/TITEgBOIN,
# commit bbf573a, "version 0.4.0"); they use base R and stats only. Run with R 4.2.2 (Debian bookworm).
# Time unit: the DLT window (maxt = 1); accrual = eligible patients per window.
args <- commandArgs(trailingOnly = TRUE)
for (f in c("next_TITE_QuasiBOIN.R", "select_mtd_TITE_QuasiBOIN.R", "get_oc_TITE_QuasiBOIN.R")) source(file.path(args[1], f))
ntrial <- if (length(args) >= 2) as.integer(args[2]) else 10000L
seed <- 16L

cases <- list(
  list(id = "mtd_at_3", target = 0.3, p = c(0.05, 0.12, 0.30, 0.45, 0.60), accrual = 2, args = list()),
  list(id = "mtd_at_2", target = 0.3, p = c(0.10, 0.30, 0.50, 0.60), accrual = 2, args = list()),
  list(id = "mtd_at_top", target = 0.3, p = c(0.02, 0.05, 0.10, 0.15, 0.30), accrual = 2, args = list()),
  list(id = "toxic_lowest", target = 0.3, p = c(0.45, 0.55, 0.65, 0.75), accrual = 2, args = list()),
  list(id = "fast_accrual_mtd_at_4", target = 0.3, p = c(0.05, 0.10, 0.18, 0.30, 0.45), accrual = 4, args = list()),
  list(id = "target_0.25_n_earlystop_12_extrasafe", target = 0.25, p = c(0.25, 0.40, 0.55, 0.65), accrual = 3,
       args = list(n.earlystop = 12, extrasafe = TRUE, offset = 0.05))
)

vec <- function(x) paste0("[", paste(sprintf("%.4f", x), collapse = ", "), "]")
cat("{\n")
cat('  "source": "R TITEgBOIN 0.4.0 get_oc_TITE_QuasiBOIN, TITE = TRUE (CRAN; github.com/cran/TITEgBOIN bbf573a), R 4.2.2, run by tests/data/dose/titeboin_get_oc.R",\n')
cat(sprintf('  "ntrial": %d,\n  "seed": %d,\n', ntrial, seed))
cat('  "settings": {"ncohort": 10, "cohortsize": 3, "maxt": 1, "maxpen": 0.5, "alpha1": 0.5, "alpha2": 0.5, "Neli": 3, "cutoff.eli": 0.95, "startdose": 1},\n')
cat('  "cases": [\n')
for (k in seq_along(cases)) {
  cs <- cases[[k]]
  oc <- do.call(get_oc_TITE_QuasiBOIN,
                c(list(target = cs$target, prob = cs$p, score = NA, TITE = TRUE, ncohort = 10, cohortsize = 3,
                       maxt = 1, accrual = cs$accrual, maxpen = 0.5, alpha1 = 0.5, alpha2 = 0.5, Neli = 3,
                       startdose = 1, cutoff.eli = 0.95, ntrial = ntrial, seed = seed), cs$args))
  opts <- paste(sprintf('"%s": %s', names(cs$args),
                        sapply(cs$args, function(v) if (is.logical(v)) tolower(as.character(v)) else format(v))),
                collapse = ", ")
  cat(sprintf('    {"id": "%s", "target": %s, "p_true": %s, "accrual": %s, "options": {%s},\n',
              cs$id, format(cs$target), vec(cs$p), format(cs$accrual), opts))
  cat(sprintf('     "selpercent": %s, "npatients": %s, "ntox": %s,\n', vec(oc$selpercent), vec(oc$npatients), vec(oc$ntox)))
  cat(sprintf('     "totaltox": %.4f, "totaln": %.4f, "percentstop": %.4f, "duration": %.4f, "sdduration": %.4f}%s\n',
              oc$totaltox, oc$totaln, oc$percentstop, oc$duration, oc$sdduration, if (k < length(cases)) "," else ""))
}
cat("  ]\n}\n")
