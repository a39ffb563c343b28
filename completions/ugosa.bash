# bash completion for ugosa
# Generated from the ugosa command line by scripts/gen_completions.py; do not edit. Regenerate: python scripts/gen_completions.py && python scripts/gen_man.py

_ugosa_values_format="wav flac mp3"
_ugosa_values_bits="16 24 32"
_ugosa_values_clip_mode="rescale clamp none"
_ugosa_values_stems="drums bass other vocals"
_ugosa_values_device="auto cpu cuda mps"
_ugosa_values_strategy="B0 P-L1:D P-L2:D P-L3:D P-L4:D P-L5:D M-L1:D M-L2:D M-L3:D M-L4:D M-L5:D S-L1:D S-L2:D S-L3:D S-L4:D S-L5:D"
_ugosa_values_optimizer="ranger radam adam"
_ugosa_values_protocol="auto paper"
_ugosa_values_labels_format="audacity csv tsv frames json"
_ugosa_values_frame_rule="museval per-source"
_ugosa_values_rests="sections quarters"

_ugosa_models() {
    local dir="${UGOSA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ugosa}/models/imported" f names="tasnet tasnet_extra htdemucs htdemucs_ft htdemucs_6s demo demo_htdemucs"
    for f in "$dir"/*.th; do [[ -e $f ]] && names+=" $(basename "$f" .th)"; done
    printf "%s" "$names"
}

# Complete the words in $1 for the word under the cursor (which may hold ':' or follow '=').
_ugosa_words() {
    COMPREPLY=($(compgen -W "$1" -- "$cur"))
    if [[ $cur == *:* ]]; then
        local head="${cur%"${cur##*:}"}"
        COMPREPLY=("${COMPREPLY[@]#"$head"}")
    fi
}

_ugosa() {
    local line="${COMP_LINE:0:COMP_POINT}" cur prev path="" word
    local -a words
    read -ra words <<< "$line"
    if [[ $line == *[[:space:]] || ${#words[@]} -le 1 ]]; then
        cur=""
    else
        cur="${words[-1]}"
        unset 'words[-1]'
    fi
    prev="${words[-1]}"
    if [[ $cur == --*=* ]]; then
        prev="${cur%%=*}"
        cur="${cur#*=}"
    fi
    for word in "${words[@]:1}"; do
        case "$path" in
            "") case "$word" in separate|adapt|filter|strategies|eval|bench|demo|model|labels) path="$word" ;; esac ;;
            "model") case "$word" in list|download|path|import|remove) path="model $word" ;; esac ;;
            "labels") case "$word" in show|convert|from-stems|draft) path="labels $word" ;; esac ;;
        esac
    done
    case "$path" in
        "")
            if [[ $cur == -* ]]; then _ugosa_words "--version -h --help"; return; fi
            _ugosa_words "separate adapt filter strategies eval bench demo model labels"
            ;;
        "separate")
            case "$prev" in
                --from-list) compopt -o default; COMPREPLY=(); return ;;
                -m|-n|--model|--name) _ugosa_words "$(_ugosa_models)"; [[ ${#COMPREPLY[@]} -gt 0 ]] || compopt -o default; return ;;
                --config) compopt -o default; COMPREPLY=(); return ;;
                --model-type) compopt -o default; COMPREPLY=(); return ;;
                -o|--out) compopt -o dirnames; COMPREPLY=(); return ;;
                --filename) COMPREPLY=(); return ;;
                --format) _ugosa_words "$_ugosa_values_format"; return ;;
                --bits) _ugosa_words "$_ugosa_values_bits"; return ;;
                --clip-mode) _ugosa_words "$_ugosa_values_clip_mode"; return ;;
                --stems) _ugosa_words "$_ugosa_values_stems"; return ;;
                --two-stems) _ugosa_words "$_ugosa_values_stems"; return ;;
                --segment) COMPREPLY=(); return ;;
                --overlap) COMPREPLY=(); return ;;
                --shifts) COMPREPLY=(); return ;;
                --seed) COMPREPLY=(); return ;;
                -d|--device) _ugosa_words "$_ugosa_values_device"; return ;;
                -l|--labels) compopt -o default; COMPREPLY=(); return ;;
                -s|--strategy) _ugosa_words "$_ugosa_values_strategy"; return ;;
                --epochs) COMPREPLY=(); return ;;
                --steps) COMPREPLY=(); return ;;
                --lr) COMPREPLY=(); return ;;
                --step) COMPREPLY=(); return ;;
                --holdout) COMPREPLY=(); return ;;
                --window) COMPREPLY=(); return ;;
                --hop) COMPREPLY=(); return ;;
                --gamma) COMPREPLY=(); return ;;
                --guard) COMPREPLY=(); return ;;
                --anchor) COMPREPLY=(); return ;;
                --batch-size) COMPREPLY=(); return ;;
                --optimizer) _ugosa_words "$_ugosa_values_optimizer"; return ;;
                --protocol) _ugosa_words "$_ugosa_values_protocol"; return ;;
                --references) compopt -o default; COMPREPLY=(); return ;;
                --labels-format) _ugosa_words "$_ugosa_values_labels_format"; return ;;
                --map) COMPREPLY=(); return ;;
                --margin) COMPREPLY=(); return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "--from-list --skip-existing -m -n --model --name --config --model-type -o --out --filename --format --mp3 --bits --clip-mode --stems --two-stems --segment --overlap --shifts --seed -d --device --downmix -l --labels -s --strategy --gate --no-resplit --resplit --epochs --steps --lr --step --holdout --window --hop --gamma --guard --anchor --batch-size --optimizer --protocol --amp --references --labels-format --map --ignore-unknown --margin --report --json --offline -q --quiet --debug -h --help"; return; fi
            compopt -o default; COMPREPLY=()
            ;;
        "adapt")
            case "$prev" in
                -l|--labels) compopt -o default; COMPREPLY=(); return ;;
                -o|--out) compopt -o default; COMPREPLY=(); return ;;
                -m|-n|--model|--name) _ugosa_words "$(_ugosa_models)"; [[ ${#COMPREPLY[@]} -gt 0 ]] || compopt -o default; return ;;
                --config) compopt -o default; COMPREPLY=(); return ;;
                --model-type) compopt -o default; COMPREPLY=(); return ;;
                -s|--strategy) _ugosa_words "$_ugosa_values_strategy"; return ;;
                --epochs) COMPREPLY=(); return ;;
                --steps) COMPREPLY=(); return ;;
                --lr) COMPREPLY=(); return ;;
                --step) COMPREPLY=(); return ;;
                --holdout) COMPREPLY=(); return ;;
                --window) COMPREPLY=(); return ;;
                --hop) COMPREPLY=(); return ;;
                --gamma) COMPREPLY=(); return ;;
                --guard) COMPREPLY=(); return ;;
                --anchor) COMPREPLY=(); return ;;
                --batch-size) COMPREPLY=(); return ;;
                --optimizer) _ugosa_words "$_ugosa_values_optimizer"; return ;;
                --seed) COMPREPLY=(); return ;;
                --protocol) _ugosa_words "$_ugosa_values_protocol"; return ;;
                --references) compopt -o default; COMPREPLY=(); return ;;
                --labels-format) _ugosa_words "$_ugosa_values_labels_format"; return ;;
                --map) COMPREPLY=(); return ;;
                --margin) COMPREPLY=(); return ;;
                -d|--device) _ugosa_words "$_ugosa_values_device"; return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "-l --labels -o --out -m -n --model --name --config --model-type -s --strategy --epochs --steps --lr --step --holdout --window --hop --gamma --guard --anchor --batch-size --optimizer --seed --protocol --amp --references --labels-format --map --ignore-unknown --margin -d --device --downmix --dry-run --force --report --json --offline -q --quiet --debug -h --help"; return; fi
            compopt -o default; COMPREPLY=()
            ;;
        "filter")
            case "$prev" in
                --stems) _ugosa_words "$_ugosa_values_stems"; return ;;
                -l|--labels) compopt -o default; COMPREPLY=(); return ;;
                --mode) compopt -o default; COMPREPLY=(); return ;;
                -o|--out) compopt -o dirnames; COMPREPLY=(); return ;;
                --filename) COMPREPLY=(); return ;;
                --format) _ugosa_words "$_ugosa_values_format"; return ;;
                --bits) _ugosa_words "$_ugosa_values_bits"; return ;;
                --clip-mode) _ugosa_words "$_ugosa_values_clip_mode"; return ;;
                --labels-format) _ugosa_words "$_ugosa_values_labels_format"; return ;;
                --map) COMPREPLY=(); return ;;
                --margin) COMPREPLY=(); return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "--stems -l --labels --mode -o --out --filename --format --mp3 --bits --clip-mode --labels-format --map --ignore-unknown --margin --downmix --report --json -q --quiet --debug -h --help"; return; fi
            compopt -o default; COMPREPLY=()
            ;;
        "strategies")
            case "$prev" in
                -m|-n|--model|--name) _ugosa_words "$(_ugosa_models)"; [[ ${#COMPREPLY[@]} -gt 0 ]] || compopt -o default; return ;;
                --config) compopt -o default; COMPREPLY=(); return ;;
                --model-type) compopt -o default; COMPREPLY=(); return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "-m -n --model --name --config --model-type --json --offline -q --quiet --debug -h --help"; return; fi
            ;;
        "eval")
            case "$prev" in
                -r|--references) compopt -o default; COMPREPLY=(); return ;;
                -e|--estimates) compopt -o default; COMPREPLY=(); return ;;
                --sources) _ugosa_words "$_ugosa_values_stems"; return ;;
                --win) COMPREPLY=(); return ;;
                --hop) COMPREPLY=(); return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "-r --references -e --estimates --sources --win --hop --json --csv -q --quiet --debug -h --help"; return; fi
            ;;
        "bench")
            case "$prev" in
                --musdb) compopt -o dirnames; COMPREPLY=(); return ;;
                -o|--out) compopt -o dirnames; COMPREPLY=(); return ;;
                --tracks) COMPREPLY=(); return ;;
                --start) COMPREPLY=(); return ;;
                --names) COMPREPLY=(); return ;;
                --strategies) _ugosa_words "$_ugosa_values_strategy"; return ;;
                --variant-seed) COMPREPLY=(); return ;;
                -m|-n|--model|--name) _ugosa_words "$(_ugosa_models)"; [[ ${#COMPREPLY[@]} -gt 0 ]] || compopt -o default; return ;;
                --config) compopt -o default; COMPREPLY=(); return ;;
                --model-type) compopt -o default; COMPREPLY=(); return ;;
                -d|--device) _ugosa_words "$_ugosa_values_device"; return ;;
                --epochs) COMPREPLY=(); return ;;
                --steps) COMPREPLY=(); return ;;
                --lr) COMPREPLY=(); return ;;
                --step) COMPREPLY=(); return ;;
                --holdout) COMPREPLY=(); return ;;
                --window) COMPREPLY=(); return ;;
                --hop) COMPREPLY=(); return ;;
                --gamma) COMPREPLY=(); return ;;
                --guard) COMPREPLY=(); return ;;
                --anchor) COMPREPLY=(); return ;;
                --batch-size) COMPREPLY=(); return ;;
                --optimizer) _ugosa_words "$_ugosa_values_optimizer"; return ;;
                --seed) COMPREPLY=(); return ;;
                --protocol) _ugosa_words "$_ugosa_values_protocol"; return ;;
                --shifts) COMPREPLY=(); return ;;
                --eval-win) COMPREPLY=(); return ;;
                --eval-hop) COMPREPLY=(); return ;;
                --frame-rule) _ugosa_words "$_ugosa_values_frame_rule"; return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "--musdb -o --out --tracks --start --names --strategies --resume --as-is --variant-seed -m -n --model --name --config --model-type -d --device --epochs --steps --lr --step --holdout --window --hop --gamma --guard --anchor --batch-size --optimizer --seed --protocol --amp --shifts --eval-win --eval-hop --frame-rule --resplit --dry-run --json --csv --markdown --offline -q --quiet --debug -h --help"; return; fi
            ;;
        "demo")
            case "$prev" in
                -o|--out) compopt -o default; COMPREPLY=(); return ;;
                --seed) COMPREPLY=(); return ;;
                --duration) COMPREPLY=(); return ;;
                --rests) _ugosa_words "$_ugosa_values_rests"; return ;;
                -s|--strategy) _ugosa_words "$_ugosa_values_strategy"; return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "-o --out --force --seed --duration --rests -s --strategy --no-resplit --resplit --json -q --quiet --debug -h --help"; return; fi
            ;;
        "model")
            if [[ $cur == -* ]]; then _ugosa_words "-h --help"; return; fi
            _ugosa_words "list download path import remove"
            ;;
        "model list")
            if [[ $cur == -* ]]; then _ugosa_words "--json -q --quiet --debug -h --help"; return; fi
            ;;
        "model download")
            if [[ $cur == -* ]]; then _ugosa_words "--json -q --quiet --debug -h --help"; return; fi
            _ugosa_words "$(_ugosa_models)"
            ;;
        "model path")
            if [[ $cur == -* ]]; then _ugosa_words "-q --quiet --debug -h --help"; return; fi
            _ugosa_words "$(_ugosa_models)"
            ;;
        "model import")
            case "$prev" in
                --name) COMPREPLY=(); return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "--name --json -q --quiet --debug -h --help"; return; fi
            compopt -o default; COMPREPLY=()
            ;;
        "model remove")
            if [[ $cur == -* ]]; then _ugosa_words "-q --quiet --debug -h --help"; return; fi
            _ugosa_words "$(_ugosa_models)"
            ;;
        "labels")
            if [[ $cur == -* ]]; then _ugosa_words "-h --help"; return; fi
            _ugosa_words "show convert from-stems draft"
            ;;
        "labels show")
            case "$prev" in
                --audio) compopt -o default; COMPREPLY=(); return ;;
                --duration) COMPREPLY=(); return ;;
                --plot) compopt -o default; COMPREPLY=(); return ;;
                --labels-format) _ugosa_words "$_ugosa_values_labels_format"; return ;;
                --map) COMPREPLY=(); return ;;
                --margin) COMPREPLY=(); return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "--audio --duration --plot --json --labels-format --map --ignore-unknown --margin -q --quiet --debug -h --help"; return; fi
            compopt -o default; COMPREPLY=()
            ;;
        "labels convert")
            case "$prev" in
                --to) _ugosa_words "$_ugosa_values_labels_format"; return ;;
                -o|--output) compopt -o default; COMPREPLY=(); return ;;
                --audio) compopt -o default; COMPREPLY=(); return ;;
                --duration) COMPREPLY=(); return ;;
                --labels-format) _ugosa_words "$_ugosa_values_labels_format"; return ;;
                --map) COMPREPLY=(); return ;;
                --margin) COMPREPLY=(); return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "--to -o --output --audio --duration --labels-format --map --ignore-unknown --margin --force -q --quiet --debug -h --help"; return; fi
            compopt -o default; COMPREPLY=()
            ;;
        "labels from-stems")
            case "$prev" in
                -f|--format) _ugosa_words "$_ugosa_values_labels_format"; return ;;
                --theta) COMPREPLY=(); return ;;
                --min-region) COMPREPLY=(); return ;;
                --min-gap) COMPREPLY=(); return ;;
                -o|--output) compopt -o default; COMPREPLY=(); return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "-f --format --theta --min-region --min-gap -o --output --force -q --quiet --debug -h --help"; return; fi
            compopt -o default; COMPREPLY=()
            ;;
        "labels draft")
            case "$prev" in
                -o|--output) compopt -o default; COMPREPLY=(); return ;;
                -f|--format) _ugosa_words "$_ugosa_values_format"; return ;;
                --sources) _ugosa_words "$_ugosa_values_stems"; return ;;
                --stems-dir) compopt -o dirnames; COMPREPLY=(); return ;;
                --threshold) COMPREPLY=(); return ;;
                --min-share) COMPREPLY=(); return ;;
                --min-region) COMPREPLY=(); return ;;
                --min-gap) COMPREPLY=(); return ;;
                --presence) COMPREPLY=(); return ;;
                -m|-n|--model|--name) _ugosa_words "$(_ugosa_models)"; [[ ${#COMPREPLY[@]} -gt 0 ]] || compopt -o default; return ;;
                --config) compopt -o default; COMPREPLY=(); return ;;
                --model-type) compopt -o default; COMPREPLY=(); return ;;
                -d|--device) _ugosa_words "$_ugosa_values_device"; return ;;
            esac
            if [[ $cur == -* ]]; then _ugosa_words "-o --output -f --format --sources --stems-dir --threshold --min-share --min-region --min-gap --presence -m -n --model --name --config --model-type -d --device --downmix --force --json --offline -q --quiet --debug -h --help"; return; fi
            compopt -o default; COMPREPLY=()
            ;;
    esac
}

complete -F _ugosa ugosa
