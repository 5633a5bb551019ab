# Reference operating characteristics from R BOIN 2.7.2 get.oc for the design options
# (tests/data/dose/boin_get_oc.json; compared in tests/test_dose_reference_options.py).
#
# Run: Rscript tests/data/dose/boin_get_oc.R BOIN_R_DIR > tests/data/dose/boin_get_oc.json
# where BOIN_R_DIR holds the R/ sources of CRAN BOIN 2.7.2 (github.com/cran/BOIN, tag 2.7.2)
# and the Iso package is installed (Debian: r-cran-iso). Run with R 4.2.2 (Debian bookworm).
args <- commandArgs(trailingOnly = TRUE)
for (f in c("get.boundary.R", "select.mtd.R", "get.oc.R")) source(file.path(args[1], f))
library(Iso)
pava <- Iso::pava

cases <- list(
  list(id = "defaults", target = 0.3, p = c(0.05, 0.12, 0.30, 0.45, 0.60), args = list()),
  list(id = "n_earlystop_9", target = 0.3, p = c(0.05, 0.12, 0.30, 0.45, 0.60), args = list(n.earlystop = 9)),
  list(id = "start_level_2", target = 0.3, p = c(0.05, 0.12, 0.30, 0.45, 0.60), args = list(startdose = 2)),
  list(id = "cutoff_eli_0.90", target = 0.3, p = c(0.25, 0.40, 0.50, 0.60), args = list(cutoff.eli = 0.90)),
  list(id = "extrasafe", target = 0.3, p = c(0.40, 0.50, 0.60, 0.70), args = list(extrasafe = TRUE, offset = 0.05)),
  list(id = "extrasafe_offset_0.10", target = 0.3, p = c(0.30, 0.45, 0.60), args = list(extrasafe = TRUE, offset = 0.10)),
  list(id = "p1_p2", target = 0.25, p = c(0.05, 0.10, 0.25, 0.40, 0.55), args = list(p.saf = 0.10, p.tox = 0.40)),
  list(id = "target_0.2_cohort_1", target = 0.2, p = c(0.05, 0.20, 0.35, 0.50), args = list(), ncohort = 24, cohortsize = 1)
)

vec <- function(x) paste0("[", paste(sprintf("%.4f", x), collapse = ", "), "]")
cat("{\n")
cat('  "source": "R BOIN 2.7.2 get.oc (CRAN; github.com/cran/BOIN 6c3a0c2), R 4.2.2, Iso 0.0-18.1, run by tests/data/dose/boin_get_oc.R",\n')
cat('  "ntrial": 10000,\n  "seed": 6,\n  "cases": [\n')
for (k in seq_along(cases)) {
  cs <- cases[[k]]
  ncohort <- if (is.null(cs$ncohort)) 10 else cs$ncohort
  cohortsize <- if (is.null(cs$cohortsize)) 3 else cs$cohortsize
  oc <- do.call(get.oc, c(list(target = cs$target, p.true = cs$p, ncohort = ncohort, cohortsize = cohortsize,
                               ntrial = 10000, seed = 6), cs$args))
  opts <- paste(sprintf('"%s": %s', names(cs$args),
                        sapply(cs$args, function(v) if (is.logical(v)) tolower(as.character(v)) else format(v))),
                collapse = ", ")
  cat(sprintf('    {"id": "%s", "target": %s, "p_true": %s, "ncohort": %d, "cohortsize": %d, "options": {%s},\n',
              cs$id, format(cs$target), vec(cs$p), ncohort, cohortsize, opts))
  cat(sprintf('     "selpercent": %s, "npatients": %s, "ntox": %s,\n', vec(oc$selpercent), vec(oc$npatients), vec(oc$ntox)))
  od <- if (is.null(oc$overdose60)) "null" else sprintf("%.4f", oc$overdose60)
  od8 <- if (is.null(oc$overdose80)) "null" else sprintf("%.4f", oc$overdose80)
  cat(sprintf('     "totaltox": %.4f, "totaln": %.4f, "percentstop": %.4f, "overdose60": %s, "overdose80": %s}%s\n',
              oc$totaltox, oc$totaln, oc$percentstop, od, od8, if (k < length(cases)) "," else ""))
}
cat("  ]\n}\n")
