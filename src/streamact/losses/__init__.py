"""Training losses: `classification` (LIGAR's AM-Softmax with its scale schedules, confidence penalty, local and
class-centre push) and `distillation` (temperature-softened KD from a frozen teacher ensemble)."""
