# fish completion for ugosa
# Generated from the ugosa command line by scripts/gen_completions.py; do not edit. Regenerate: python scripts/gen_completions.py && python scripts/gen_man.py

# The command path typed so far, e.g. 'model list' ('' before any subcommand).
function __ugosa_path
    set -l path ''
    for word in (commandline -opc)[2..-1]
        switch "$path"
            case ''
                contains -- $word separate adapt filter strategies eval bench demo model labels; and set path $word
            case 'model'
                contains -- $word list download path import remove; and set path "model $word"
            case 'labels'
                contains -- $word show convert from-stems draft; and set path "labels $word"
        end
    end
    echo "$path"
end

function __ugosa_at
    set -l path (__ugosa_path)
    test "$path" = "$argv"
end

function __ugosa_models
    printf '%s\n' tasnet tasnet_extra htdemucs htdemucs_ft htdemucs_6s demo demo_htdemucs
    set -l cache $UGOSA_CACHE_DIR
    if test -z "$cache"
        set -q XDG_CACHE_HOME; and set cache $XDG_CACHE_HOME/ugosa; or set cache $HOME/.cache/ugosa
    end
    for file in $cache/models/imported/*.th
        basename $file .th
    end
end

complete -c ugosa -f

# ugosa
complete -c ugosa -n '__ugosa_at' -a separate -d 'Separate songs into stems and print the written paths (or one JSON object per track with --json).'
complete -c ugosa -n '__ugosa_at' -a adapt -d 'Adapt the model to one song from its labels and save the adapted model (path on stdout).'
complete -c ugosa -n '__ugosa_at' -a filter -d 'Apply the labels to stems made by any separator, and print the written paths (or JSON with --json).'
complete -c ugosa -n '__ugosa_at' -a strategies -d 'List the fine-tuning strategies: what each trains and its number of trainable parameters (#TP).'
complete -c ugosa -n '__ugosa_at' -a eval -d 'Score estimated stems against references: SDR, SIR, ISR, SAR (BSSEval v4), MDX SDR, PES and EPS, in dB.'
complete -c ugosa -n '__ugosa_at' -a bench -d 'Run the paper\'s experiment on MUSDB18: adapt with each strategy, separate, score, print the table.'
complete -c ugosa -n '__ugosa_at' -a demo -d 'Make a song and its labels, separate it before and after adapting, and print SDR and leakage per source.'
complete -c ugosa -n '__ugosa_at' -a model -d 'Manage pretrained models and the model cache.'
complete -c ugosa -n '__ugosa_at' -a labels -d 'Activation labels: where each instrument plays.'
complete -c ugosa -n '__ugosa_at' -l version -d 'Print the version and exit.'
complete -c ugosa -n '__ugosa_at' -s h -l help -d 'Show this message and exit.'

# ugosa separate
complete -c ugosa -n '__ugosa_at separate' -l from-list -r -F -d 'Also separate the files listed in FILE (\'-\': stdin), one path per line; blank lines and lines starting with # are skipped.'
complete -c ugosa -n '__ugosa_at separate' -l skip-existing -d 'Skip a track whose stems all exist already, written together by one run (their paths are still printed); a track with stems of different runs is separated again.'
complete -c ugosa -n '__ugosa_at separate' -s m -s n -l model -l name -r -F -a '(__ugosa_models)' -d 'Registry name (see `ugosa model list`), checkpoint or demucs v4 file, MSST weights (.ckpt, .pth, .safetensors; with --config), or http(s) URL (#sha256=HEX pins its hash); -n/--name as in demucs.'
complete -c ugosa -n '__ugosa_at separate' -l config -r -F -d 'The YAML configuration of the BS-RoFormer, Mel-Band RoFormer or SCNet model whose weights --model gives (as Music-Source-Separation-Training and UVR share them); a URL may end in #sha256=HEX.'
complete -c ugosa -n '__ugosa_at separate' -l model-type -r -F -d 'The type of the --config model, where the configuration does not tell it.'
complete -c ugosa -n '__ugosa_at separate' -s o -l out -r -f -a '(__fish_complete_directories)' -d 'Folder the stems are written under; a song\'s stems there already are replaced (see --skip-existing).'
complete -c ugosa -n '__ugosa_at separate' -l filename -r -f -d 'Stem path template under --out; fields {model} {parent} (the song\'s folder) {track} {stem} {ext}.'
complete -c ugosa -n '__ugosa_at separate' -l format -r -f -a 'wav flac mp3' -d 'Output container: wav, flac or mp3 (320 kbps; --bits does not apply).'
complete -c ugosa -n '__ugosa_at separate' -l mp3 -d 'Same as --format mp3 (as demucs spells it).'
complete -c ugosa -n '__ugosa_at separate' -l bits -r -f -a '16 24 32' -d 'Sample format: 16, 24 (integer) or 32 (float, WAV only); default 16.'
complete -c ugosa -n '__ugosa_at separate' -l clip-mode -r -f -a 'rescale clamp none' -d 'rescale: scale all stems of a track by one factor if any clips (they still sum to the mix); clamp: clip samples; none: write as is.'
complete -c ugosa -n '__ugosa_at separate' -l stems -r -f -a 'drums bass other vocals' -d 'Keep only these stems (comma-separated or repeated).'
complete -c ugosa -n '__ugosa_at separate' -l two-stems -r -f -a 'drums bass other vocals' -d 'Write STEM and no_STEM (the sum of the others) only.'
complete -c ugosa -n '__ugosa_at separate' -l segment -r -f -d 'Segment length in seconds, 1 to 60 (default: the model\'s, 8 s).'
complete -c ugosa -n '__ugosa_at separate' -l overlap -r -f -d 'Overlap between segments, 0 to 0.9 (default: 0.25; a --config model: its configuration\'s inference.num_overlap).'
complete -c ugosa -n '__ugosa_at separate' -l shifts -r -f -d 'Average over this many random time shifts, 0 to 100 (slower, slightly better).'
complete -c ugosa -n '__ugosa_at separate' -l seed -r -f -d 'Seed for the random shifts and the adaptation (window order); the same seed repeats a CPU run exactly.'
complete -c ugosa -n '__ugosa_at separate' -s d -l device -r -f -a 'auto cpu cuda mps' -d 'One of auto, cpu, cuda, mps.'
complete -c ugosa -n '__ugosa_at separate' -l downmix -d 'Mix inputs with more than 2 channels down to stereo instead of failing.'
complete -c ugosa -n '__ugosa_at separate' -s l -l labels -r -F -d 'Where each instrument plays: Audacity labels, CSV, TSV or JSON.'
complete -c ugosa -n '__ugosa_at separate' -s s -l strategy -r -f -a 'B0 P-L1:D P-L2:D P-L3:D P-L4:D P-L5:D M-L1:D M-L2:D M-L3:D M-L4:D M-L5:D S-L1:D S-L2:D S-L3:D S-L4:D S-L5:D' -d 'B0, or P-Lk:D / M-Lk:D / S-Lk:D with k in 1..5 (see `ugosa strategies`; default: the model\'s recommendation, else P-L2:D).'
complete -c ugosa -n '__ugosa_at separate' -l gate -d 'Silence each stem outside its labelled regions (with short fades).'
complete -c ugosa -n '__ugosa_at separate' -l no-resplit -l resplit -d 'Apply the labels to the stems, frame by frame (the default with --labels): the mix is re-split among the stems labelled active, so resting stems come out silent and their sound goes to the playing ones.'
complete -c ugosa -n '__ugosa_at separate' -l epochs -r -f -d 'Passes over the song\'s windows, 1 to 1000 (default: the plan\'s; --steps counts steps instead).'
complete -c ugosa -n '__ugosa_at separate' -l steps -r -f -d 'Optimisation steps in all, 1 to 100000 (default: as many as the plan\'s budget allows).'
complete -c ugosa -n '__ugosa_at separate' -l lr -r -f -d 'One learning rate for every weight (default: the model\'s recommendation, else the step-size rule of --step; the paper used 1e-5).'
complete -c ugosa -n '__ugosa_at separate' -l step -r -f -d 'Step size as a share of each weight tensor\'s own scale (its RMS), the same on any network (default 0.001; --lr sets an absolute rate instead).'
complete -c ugosa -n '__ugosa_at separate' -l holdout -r -f -d 'Share of each labelled rest (2 s or longer) kept out of training to check whether adapting helped and to stop once it stops helping, 0 to 0.5 (default 0.25; 0: no check, every planned step).'
complete -c ugosa -n '__ugosa_at separate' -l window -r -f -d 'Training window in seconds, 0.1 to 60 (default: the model\'s recommendation, else 4, or the model\'s segment if shorter).'
complete -c ugosa -n '__ugosa_at separate' -l hop -r -f -d 'Hop between training windows in seconds, at least the window / 100 (default: the window).'
complete -c ugosa -n '__ugosa_at separate' -l gamma -r -f -d 'Weight of the silence term of the proposed loss (default: the model\'s recommendation, else 10; the paper used 1).'
complete -c ugosa -n '__ugosa_at separate' -l guard -r -f -d 'Seconds on each side of every labelled border where the silence term is not applied, so borders drawn a little off do no harm (default: the model\'s recommendation, else 0.5; 0: exact borders).'
complete -c ugosa -n '__ugosa_at separate' -l anchor -r -f -d 'Weight of the term that keeps each source with no labelled silence (an unlabelled one) close to the pretrained model\'s stem, so it does not soak up what the others lose (default: the model\'s recommendation, else 0.3; 0: off).'
complete -c ugosa -n '__ugosa_at separate' -l batch-size -r -f -d 'Windows per step, 1 to 64 (default: the model\'s recommendation, else 1; 4 on CUDA).'
complete -c ugosa -n '__ugosa_at separate' -l optimizer -r -f -a 'ranger radam adam' -d 'One of ranger, radam, adam (default: the model\'s, else adam; the paper used ranger).'
complete -c ugosa -n '__ugosa_at separate' -l protocol -r -f -a 'auto paper' -d 'auto: the settings the model file recommends, else ugosa\'s, with steps and windows planned on a CPU to do about the work of one more separation of the song; paper: the paper\'s (Ranger at lr 1e-5, 10 epochs of 10 s windows with a 1 s hop, no held-out check).'
complete -c ugosa -n '__ugosa_at separate' -l amp -d 'Mixed precision (bfloat16) on CUDA.'
complete -c ugosa -n '__ugosa_at separate' -l references -r -F -d 'True stems for S- strategies: a folder or files.'
complete -c ugosa -n '__ugosa_at separate' -l labels-format -r -f -a 'audacity csv tsv frames json' -d 'Force the labels format: audacity, csv, tsv, frames, json.'
complete -c ugosa -n '__ugosa_at separate' -l map -r -f -d 'Map your label words to sources, e.g.'
complete -c ugosa -n '__ugosa_at separate' -l ignore-unknown -d 'Skip labels naming no known source.'
complete -c ugosa -n '__ugosa_at separate' -l margin -r -f -d 'Widen labelled active regions by this many seconds.'
complete -c ugosa -n '__ugosa_at separate' -l report -d 'Also write a report page beside each song\'s stems (report.html, or <track>.report.html where songs share a folder): the waveform with the labels, each source\'s level before and after, the adaptation, and players.'
complete -c ugosa -n '__ugosa_at separate' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at separate' -l offline -d 'Never use the network; use only cached or local models.'
complete -c ugosa -n '__ugosa_at separate' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at separate' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at separate' -s h -l help -d 'Show this message and exit.'
complete -c ugosa -n '__ugosa_at separate' -F

# ugosa adapt
complete -c ugosa -n '__ugosa_at adapt' -s l -l labels -r -F -d 'Where each instrument plays: Audacity labels, CSV, TSV or JSON.'
complete -c ugosa -n '__ugosa_at adapt' -s o -l out -r -F -d 'Where to write the adapted model (default: TRACK-adapted.th); an existing file is refused unless --force.'
complete -c ugosa -n '__ugosa_at adapt' -s m -s n -l model -l name -r -F -a '(__ugosa_models)' -d 'Registry name (see `ugosa model list`), checkpoint or demucs v4 file, MSST weights (.ckpt, .pth, .safetensors; with --config), or http(s) URL (#sha256=HEX pins its hash); -n/--name as in demucs.'
complete -c ugosa -n '__ugosa_at adapt' -l config -r -F -d 'The YAML configuration of the BS-RoFormer, Mel-Band RoFormer or SCNet model whose weights --model gives (as Music-Source-Separation-Training and UVR share them); a URL may end in #sha256=HEX.'
complete -c ugosa -n '__ugosa_at adapt' -l model-type -r -F -d 'The type of the --config model, where the configuration does not tell it.'
complete -c ugosa -n '__ugosa_at adapt' -s s -l strategy -r -f -a 'B0 P-L1:D P-L2:D P-L3:D P-L4:D P-L5:D M-L1:D M-L2:D M-L3:D M-L4:D M-L5:D S-L1:D S-L2:D S-L3:D S-L4:D S-L5:D' -d 'B0, or P-Lk:D / M-Lk:D / S-Lk:D with k in 1..5 (see `ugosa strategies`; default: the model\'s recommendation, else P-L2:D).'
complete -c ugosa -n '__ugosa_at adapt' -l epochs -r -f -d 'Passes over the song\'s windows, 1 to 1000 (default: the plan\'s; --steps counts steps instead).'
complete -c ugosa -n '__ugosa_at adapt' -l steps -r -f -d 'Optimisation steps in all, 1 to 100000 (default: as many as the plan\'s budget allows).'
complete -c ugosa -n '__ugosa_at adapt' -l lr -r -f -d 'One learning rate for every weight (default: the model\'s recommendation, else the step-size rule of --step; the paper used 1e-5).'
complete -c ugosa -n '__ugosa_at adapt' -l step -r -f -d 'Step size as a share of each weight tensor\'s own scale (its RMS), the same on any network (default 0.001; --lr sets an absolute rate instead).'
complete -c ugosa -n '__ugosa_at adapt' -l holdout -r -f -d 'Share of each labelled rest (2 s or longer) kept out of training to check whether adapting helped and to stop once it stops helping, 0 to 0.5 (default 0.25; 0: no check, every planned step).'
complete -c ugosa -n '__ugosa_at adapt' -l window -r -f -d 'Training window in seconds, 0.1 to 60 (default: the model\'s recommendation, else 4, or the model\'s segment if shorter).'
complete -c ugosa -n '__ugosa_at adapt' -l hop -r -f -d 'Hop between training windows in seconds, at least the window / 100 (default: the window).'
complete -c ugosa -n '__ugosa_at adapt' -l gamma -r -f -d 'Weight of the silence term of the proposed loss (default: the model\'s recommendation, else 10; the paper used 1).'
complete -c ugosa -n '__ugosa_at adapt' -l guard -r -f -d 'Seconds on each side of every labelled border where the silence term is not applied, so borders drawn a little off do no harm (default: the model\'s recommendation, else 0.5; 0: exact borders).'
complete -c ugosa -n '__ugosa_at adapt' -l anchor -r -f -d 'Weight of the term that keeps each source with no labelled silence (an unlabelled one) close to the pretrained model\'s stem, so it does not soak up what the others lose (default: the model\'s recommendation, else 0.3; 0: off).'
complete -c ugosa -n '__ugosa_at adapt' -l batch-size -r -f -d 'Windows per step, 1 to 64 (default: the model\'s recommendation, else 1; 4 on CUDA).'
complete -c ugosa -n '__ugosa_at adapt' -l optimizer -r -f -a 'ranger radam adam' -d 'One of ranger, radam, adam (default: the model\'s, else adam; the paper used ranger).'
complete -c ugosa -n '__ugosa_at adapt' -l seed -r -f -d 'Seed for repeatable runs (window order, init).'
complete -c ugosa -n '__ugosa_at adapt' -l protocol -r -f -a 'auto paper' -d 'auto: the settings the model file recommends, else ugosa\'s, with steps and windows planned on a CPU to do about the work of one more separation of the song; paper: the paper\'s (Ranger at lr 1e-5, 10 epochs of 10 s windows with a 1 s hop, no held-out check).'
complete -c ugosa -n '__ugosa_at adapt' -l amp -d 'Mixed precision (bfloat16) on CUDA.'
complete -c ugosa -n '__ugosa_at adapt' -l references -r -F -d 'True stems for S- strategies: a folder or files.'
complete -c ugosa -n '__ugosa_at adapt' -l labels-format -r -f -a 'audacity csv tsv frames json' -d 'Force the labels format: audacity, csv, tsv, frames, json.'
complete -c ugosa -n '__ugosa_at adapt' -l map -r -f -d 'Map your label words to sources, e.g.'
complete -c ugosa -n '__ugosa_at adapt' -l ignore-unknown -d 'Skip labels naming no known source.'
complete -c ugosa -n '__ugosa_at adapt' -l margin -r -f -d 'Widen labelled active regions by this many seconds.'
complete -c ugosa -n '__ugosa_at adapt' -s d -l device -r -f -a 'auto cpu cuda mps' -d 'One of auto, cpu, cuda, mps.'
complete -c ugosa -n '__ugosa_at adapt' -l downmix -d 'Mix inputs with more than 2 channels down to stereo instead of failing.'
complete -c ugosa -n '__ugosa_at adapt' -l dry-run -d 'Print the plan and a time estimate; do not train.'
complete -c ugosa -n '__ugosa_at adapt' -l force -d 'Replace the model file if it exists (an input is never replaced).'
complete -c ugosa -n '__ugosa_at adapt' -l report -d 'Also write a report page beside the model, named after it (MODEL.report.html): the waveform with the labels, each source\'s level with the pretrained and the adapted model (two more separations of the song), and the adaptation.'
complete -c ugosa -n '__ugosa_at adapt' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at adapt' -l offline -d 'Never use the network; use only cached or local models.'
complete -c ugosa -n '__ugosa_at adapt' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at adapt' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at adapt' -s h -l help -d 'Show this message and exit.'
complete -c ugosa -n '__ugosa_at adapt' -F

# ugosa filter
complete -c ugosa -n '__ugosa_at filter' -l stems -r -f -a 'drums bass other vocals' -d 'A folder of <stem>.wav (or .flac, ...) files from any separator, or stem files (repeat the option, or list them after the song; NAME=FILE names a file\'s source).'
complete -c ugosa -n '__ugosa_at filter' -s l -l labels -r -F -d 'Where each instrument plays: Audacity labels, CSV, TSV or JSON.'
complete -c ugosa -n '__ugosa_at filter' -l mode -r -F -d 'resplit: share the mixture, frame by frame, among the stems labelled active (a resting stem comes out silent, its sound handed to the playing ones); gate: silence each stem outside its labelled regions (with short fades).'
complete -c ugosa -n '__ugosa_at filter' -s o -l out -r -f -a '(__fish_complete_directories)' -d 'Folder the filtered stems are written under.'
complete -c ugosa -n '__ugosa_at filter' -l filename -r -f -d 'Stem path template under --out; fields {model} (the --mode) {parent} (the song\'s folder) {track} {stem} {ext}.'
complete -c ugosa -n '__ugosa_at filter' -l format -r -f -a 'wav flac mp3' -d 'Output container: wav, flac or mp3 (320 kbps; --bits does not apply).'
complete -c ugosa -n '__ugosa_at filter' -l mp3 -d 'Same as --format mp3 (as demucs spells it).'
complete -c ugosa -n '__ugosa_at filter' -l bits -r -f -a '16 24 32' -d 'Sample format: 16, 24 (integer) or 32 (float, WAV only); default 16.'
complete -c ugosa -n '__ugosa_at filter' -l clip-mode -r -f -a 'rescale clamp none' -d 'rescale: scale all stems of a track by one factor if any clips (they still sum to the mix); clamp: clip samples; none: write as is.'
complete -c ugosa -n '__ugosa_at filter' -l labels-format -r -f -a 'audacity csv tsv frames json' -d 'Force the labels format: audacity, csv, tsv, frames, json.'
complete -c ugosa -n '__ugosa_at filter' -l map -r -f -d 'Map your label words to sources, e.g.'
complete -c ugosa -n '__ugosa_at filter' -l ignore-unknown -d 'Skip labels naming no known source.'
complete -c ugosa -n '__ugosa_at filter' -l margin -r -f -d 'Widen labelled active regions by this many seconds.'
complete -c ugosa -n '__ugosa_at filter' -l downmix -d 'Mix inputs with more than 2 channels down to stereo instead of failing.'
complete -c ugosa -n '__ugosa_at filter' -l report -d 'Also write a report page beside the filtered stems (report.html): the waveform with the labels, each stem\'s level before and after, and players for the song and both sets of stems.'
complete -c ugosa -n '__ugosa_at filter' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at filter' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at filter' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at filter' -s h -l help -d 'Show this message and exit.'
complete -c ugosa -n '__ugosa_at filter' -F

# ugosa strategies
complete -c ugosa -n '__ugosa_at strategies' -s m -s n -l model -l name -r -F -a '(__ugosa_models)' -d 'Registry name (see `ugosa model list`), checkpoint or demucs v4 file, MSST weights (.ckpt, .pth, .safetensors; with --config), or http(s) URL (#sha256=HEX pins its hash); -n/--name as in demucs.'
complete -c ugosa -n '__ugosa_at strategies' -l config -r -F -d 'The YAML configuration of the BS-RoFormer, Mel-Band RoFormer or SCNet model whose weights --model gives (as Music-Source-Separation-Training and UVR share them); a URL may end in #sha256=HEX.'
complete -c ugosa -n '__ugosa_at strategies' -l model-type -r -F -d 'The type of the --config model, where the configuration does not tell it.'
complete -c ugosa -n '__ugosa_at strategies' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at strategies' -l offline -d 'Never use the network; use only cached or local models.'
complete -c ugosa -n '__ugosa_at strategies' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at strategies' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at strategies' -s h -l help -d 'Show this message and exit.'

# ugosa eval
complete -c ugosa -n '__ugosa_at eval' -s r -l references -r -F -d 'Folder of <stem>.wav (or .flac, ...) reference stems, or reference files (repeat the option; NAME=FILE names a stem).'
complete -c ugosa -n '__ugosa_at eval' -s e -l estimates -r -F -d 'Folder of estimated stems, or estimate files, named like the references.'
complete -c ugosa -n '__ugosa_at eval' -l sources -r -f -a 'drums bass other vocals' -d 'Comma-separated stems to score (default: every estimate).'
complete -c ugosa -n '__ugosa_at eval' -l win -r -f -d 'BSSEval frame length in seconds, 0.1 or more (the paper used 2).'
complete -c ugosa -n '__ugosa_at eval' -l hop -r -f -d 'BSSEval frame hop in seconds, 0.1 or more (the paper used 1.5).'
complete -c ugosa -n '__ugosa_at eval' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at eval' -l csv -d 'Print the scores as CSV on stdout.'
complete -c ugosa -n '__ugosa_at eval' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at eval' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at eval' -s h -l help -d 'Show this message and exit.'

# ugosa bench
complete -c ugosa -n '__ugosa_at bench' -l musdb -r -f -a '(__fish_complete_directories)' -d 'MUSDB18-HQ root (or its test folder): test/<track>/{mixture,drums,bass,other,vocals}.wav.'
complete -c ugosa -n '__ugosa_at bench' -s o -l out -r -f -a '(__fish_complete_directories)' -d 'Folder for the results, the variant audio and labels.'
complete -c ugosa -n '__ugosa_at bench' -l tracks -r -f -d 'Number of test tracks, in name order (default: all; paper: 10).'
complete -c ugosa -n '__ugosa_at bench' -l start -r -f -d 'Index of the first track (0-based).'
complete -c ugosa -n '__ugosa_at bench' -l names -r -f -d 'Comma-separated track names instead of --tracks/--start.'
complete -c ugosa -n '__ugosa_at bench' -l strategies -r -f -a 'B0 P-L1:D P-L2:D P-L3:D P-L4:D P-L5:D M-L1:D M-L2:D M-L3:D M-L4:D M-L5:D S-L1:D S-L2:D S-L3:D S-L4:D S-L5:D' -d 'Comma-separated strategies (default: every P-Lk:D, then B0).'
complete -c ugosa -n '__ugosa_at bench' -l resume -d 'Keep stored results made with the same settings; run the rest.'
complete -c ugosa -n '__ugosa_at bench' -l as-is -d 'Use the tracks unchanged instead of the UGOSA variant.'
complete -c ugosa -n '__ugosa_at bench' -l variant-seed -r -f -d 'Seed of the order in which sources are silenced.'
complete -c ugosa -n '__ugosa_at bench' -s m -s n -l model -l name -r -F -a '(__ugosa_models)' -d 'Registry name (see `ugosa model list`), checkpoint or demucs v4 file, MSST weights (.ckpt, .pth, .safetensors; with --config), or http(s) URL (#sha256=HEX pins its hash); -n/--name as in demucs.'
complete -c ugosa -n '__ugosa_at bench' -l config -r -F -d 'The YAML configuration of the BS-RoFormer, Mel-Band RoFormer or SCNet model whose weights --model gives (as Music-Source-Separation-Training and UVR share them); a URL may end in #sha256=HEX.'
complete -c ugosa -n '__ugosa_at bench' -l model-type -r -F -d 'The type of the --config model, where the configuration does not tell it.'
complete -c ugosa -n '__ugosa_at bench' -s d -l device -r -f -a 'auto cpu cuda mps' -d 'One of auto, cpu, cuda, mps.'
complete -c ugosa -n '__ugosa_at bench' -l epochs -r -f -d 'Passes over the song\'s windows, 1 to 1000 (default: the plan\'s; --steps counts steps instead).'
complete -c ugosa -n '__ugosa_at bench' -l steps -r -f -d 'Optimisation steps in all, 1 to 100000 (default: as many as the plan\'s budget allows).'
complete -c ugosa -n '__ugosa_at bench' -l lr -r -f -d 'One learning rate for every weight (default: the model\'s recommendation, else the step-size rule of --step; the paper used 1e-5).'
complete -c ugosa -n '__ugosa_at bench' -l step -r -f -d 'Step size as a share of each weight tensor\'s own scale (its RMS), the same on any network (default 0.001; --lr sets an absolute rate instead).'
complete -c ugosa -n '__ugosa_at bench' -l holdout -r -f -d 'Share of each labelled rest (2 s or longer) kept out of training to check whether adapting helped and to stop once it stops helping, 0 to 0.5 (default 0.25; 0: no check, every planned step).'
complete -c ugosa -n '__ugosa_at bench' -l window -r -f -d 'Training window in seconds, 0.1 to 60 (default: the model\'s recommendation, else 4, or the model\'s segment if shorter).'
complete -c ugosa -n '__ugosa_at bench' -l hop -r -f -d 'Hop between training windows in seconds, at least the window / 100 (default: the window).'
complete -c ugosa -n '__ugosa_at bench' -l gamma -r -f -d 'Weight of the silence term of the proposed loss (default: the model\'s recommendation, else 10; the paper used 1).'
complete -c ugosa -n '__ugosa_at bench' -l guard -r -f -d 'Seconds on each side of every labelled border where the silence term is not applied, so borders drawn a little off do no harm (default: the model\'s recommendation, else 0.5; 0: exact borders).'
complete -c ugosa -n '__ugosa_at bench' -l anchor -r -f -d 'Weight of the term that keeps each source with no labelled silence (an unlabelled one) close to the pretrained model\'s stem, so it does not soak up what the others lose (default: the model\'s recommendation, else 0.3; 0: off).'
complete -c ugosa -n '__ugosa_at bench' -l batch-size -r -f -d 'Windows per step, 1 to 64 (default: the model\'s recommendation, else 1; 4 on CUDA).'
complete -c ugosa -n '__ugosa_at bench' -l optimizer -r -f -a 'ranger radam adam' -d 'One of ranger, radam, adam (default: the model\'s, else adam; the paper used ranger).'
complete -c ugosa -n '__ugosa_at bench' -l seed -r -f -d 'Seed for repeatable runs (window order, init).'
complete -c ugosa -n '__ugosa_at bench' -l protocol -r -f -a 'auto paper' -d 'auto: the settings the model file recommends, else ugosa\'s, with steps and windows planned on a CPU to do about the work of one more separation of the song; paper: the paper\'s (Ranger at lr 1e-5, 10 epochs of 10 s windows with a 1 s hop, no held-out check).'
complete -c ugosa -n '__ugosa_at bench' -l amp -d 'Mixed precision (bfloat16) on CUDA.'
complete -c ugosa -n '__ugosa_at bench' -l shifts -r -f -d 'Random time shifts averaged when separating, 0 to 100 (paper: 10).'
complete -c ugosa -n '__ugosa_at bench' -l eval-win -r -f -d 'BSSEval frame length in seconds, 0.1 or more (paper: 2).'
complete -c ugosa -n '__ugosa_at bench' -l eval-hop -r -f -d 'BSSEval frame hop in seconds, 0.1 or more (paper: 1.5).'
complete -c ugosa -n '__ugosa_at bench' -l frame-rule -r -f -a 'museval per-source' -d 'museval: a frame where any reference is silent is skipped for every source (the paper\'s tooling); per-source: skipped only for the sources silent in it.'
complete -c ugosa -n '__ugosa_at bench' -l resplit -d 'Also score each strategy\'s stems re-split by the labels, as separate --labels --resplit writes them (rows STRATEGY+resplit).'
complete -c ugosa -n '__ugosa_at bench' -l dry-run -d 'Print the plan and its time estimate; run nothing.'
complete -c ugosa -n '__ugosa_at bench' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at bench' -l csv -d 'Print the table as CSV on stdout.'
complete -c ugosa -n '__ugosa_at bench' -l markdown -d 'Print the table as Markdown on stdout.'
complete -c ugosa -n '__ugosa_at bench' -l offline -d 'Never use the network; use only cached or local models.'
complete -c ugosa -n '__ugosa_at bench' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at bench' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at bench' -s h -l help -d 'Show this message and exit.'

# ugosa demo
complete -c ugosa -n '__ugosa_at demo' -s o -l out -r -F -d 'Keep song.wav, labels.txt and the true, B0 and adapted stems in this folder; a folder holding any of them already is refused unless --force.'
complete -c ugosa -n '__ugosa_at demo' -l force -d 'Replace the files of an earlier demo in --out.'
complete -c ugosa -n '__ugosa_at demo' -l seed -r -f -d 'Which held-out song to make (0, 1, 2, ...).'
complete -c ugosa -n '__ugosa_at demo' -l duration -r -f -d 'Song length in seconds.'
complete -c ugosa -n '__ugosa_at demo' -l rests -r -f -a 'sections quarters' -d 'Where the instruments rest: \'quarters\' (each in one quarter of the song, the paper\'s protocol) or \'sections\' (sections drawn at random; a source may rest most of the song).'
complete -c ugosa -n '__ugosa_at demo' -s s -l strategy -r -f -a 'B0 P-L1:D P-L2:D P-L3:D P-L4:D P-L5:D M-L1:D M-L2:D M-L3:D M-L4:D M-L5:D S-L1:D S-L2:D S-L3:D S-L4:D S-L5:D' -d 'P-Lk:D or M-Lk:D (default: P-L2:D, as ugosa separate --labels).'
complete -c ugosa -n '__ugosa_at demo' -l no-resplit -l resplit -d 'Apply the labels to the adapted stems, as ugosa separate --labels does (--no-resplit: score the adapted model\'s own stems).'
complete -c ugosa -n '__ugosa_at demo' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at demo' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at demo' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at demo' -s h -l help -d 'Show this message and exit.'

# ugosa model
complete -c ugosa -n '__ugosa_at model' -a list -d 'Show every known model: name, status (cached, not cached, corrupt), size, SHA-256, description and path.'
complete -c ugosa -n '__ugosa_at model' -a download -d 'Download models into the cache (verified against their SHA-256 prefix) and print their paths.'
complete -c ugosa -n '__ugosa_at model' -a path -d 'Print the local file of a model (each file of a bag, one per line); exit 2 if it is not cached.'
complete -c ugosa -n '__ugosa_at model' -a import -d 'Copy a model file into the cache, after checking it loads and matches its SHA-256 prefix.'
complete -c ugosa -n '__ugosa_at model' -a remove -d 'Delete a model from the cache and print the removed paths.'
complete -c ugosa -n '__ugosa_at model' -s h -l help -d 'Show this message and exit.'

# ugosa model list
complete -c ugosa -n '__ugosa_at model list' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at model list' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at model list' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at model list' -s h -l help -d 'Show this message and exit.'

# ugosa model download
complete -c ugosa -n '__ugosa_at model download' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at model download' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at model download' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at model download' -s h -l help -d 'Show this message and exit.'
complete -c ugosa -n '__ugosa_at model download' -f -a '(__ugosa_models)'

# ugosa model path
complete -c ugosa -n '__ugosa_at model path' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at model path' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at model path' -s h -l help -d 'Show this message and exit.'
complete -c ugosa -n '__ugosa_at model path' -f -a '(__ugosa_models)'

# ugosa model import
complete -c ugosa -n '__ugosa_at model import' -l name -r -f -d 'Store it as this model (a registry name, or a new name; default: from the file name).'
complete -c ugosa -n '__ugosa_at model import' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at model import' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at model import' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at model import' -s h -l help -d 'Show this message and exit.'
complete -c ugosa -n '__ugosa_at model import' -F

# ugosa model remove
complete -c ugosa -n '__ugosa_at model remove' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at model remove' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at model remove' -s h -l help -d 'Show this message and exit.'
complete -c ugosa -n '__ugosa_at model remove' -f -a '(__ugosa_models)'

# ugosa labels
complete -c ugosa -n '__ugosa_at labels' -a show -d 'Show the labels as a per-source timeline (or as JSON with --json, or as a picture with --plot).'
complete -c ugosa -n '__ugosa_at labels' -a convert -d 'Convert labels between formats (Audacity labels, CSV, TSV, frame table, JSON).'
complete -c ugosa -n '__ugosa_at labels' -a from-stems -d 'Detect where each source plays from its isolated stem (the paper\'s method); Audacity labels by default.'
complete -c ugosa -n '__ugosa_at labels' -a draft -d 'Draft labels from the pretrained model\'s stems: where each source seems to play.'
complete -c ugosa -n '__ugosa_at labels' -s h -l help -d 'Show this message and exit.'

# ugosa labels show
complete -c ugosa -n '__ugosa_at labels show' -l audio -r -F -d 'The song: its length clips the labels.'
complete -c ugosa -n '__ugosa_at labels show' -l duration -r -f -d 'The song\'s length instead of --audio: seconds, mm:ss or hh:mm:ss.'
complete -c ugosa -n '__ugosa_at labels show' -l plot -r -F -d 'Draw the labels as lanes, one per source (over the song\'s waveform with --audio), into a PNG or SVG picture (the extension decides) instead of the timeline; an existing picture is replaced.'
complete -c ugosa -n '__ugosa_at labels show' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at labels show' -l labels-format -r -f -a 'audacity csv tsv frames json' -d 'Force the labels format: audacity, csv, tsv, frames, json.'
complete -c ugosa -n '__ugosa_at labels show' -l map -r -f -d 'Map your label words to sources, e.g.'
complete -c ugosa -n '__ugosa_at labels show' -l ignore-unknown -d 'Skip labels naming no known source.'
complete -c ugosa -n '__ugosa_at labels show' -l margin -r -f -d 'Widen labelled active regions by this many seconds.'
complete -c ugosa -n '__ugosa_at labels show' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at labels show' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at labels show' -s h -l help -d 'Show this message and exit.'
complete -c ugosa -n '__ugosa_at labels show' -F

# ugosa labels convert
complete -c ugosa -n '__ugosa_at labels convert' -l to -r -f -a 'audacity csv tsv frames json' -d 'Output format: audacity, csv, tsv, frames, json (default: from -o\'s suffix, else audacity).'
complete -c ugosa -n '__ugosa_at labels convert' -s o -l output -r -F -d 'Write to this file (atomically) instead of stdout; an existing file is refused unless --force.'
complete -c ugosa -n '__ugosa_at labels convert' -l audio -r -F -d 'The song: its length clips the labels.'
complete -c ugosa -n '__ugosa_at labels convert' -l duration -r -f -d 'The song\'s length instead of --audio: seconds, mm:ss or hh:mm:ss.'
complete -c ugosa -n '__ugosa_at labels convert' -l labels-format -r -f -a 'audacity csv tsv frames json' -d 'Force the labels format: audacity, csv, tsv, frames, json.'
complete -c ugosa -n '__ugosa_at labels convert' -l map -r -f -d 'Map your label words to sources, e.g.'
complete -c ugosa -n '__ugosa_at labels convert' -l ignore-unknown -d 'Skip labels naming no known source.'
complete -c ugosa -n '__ugosa_at labels convert' -l margin -r -f -d 'Widen labelled active regions by this many seconds.'
complete -c ugosa -n '__ugosa_at labels convert' -l force -d 'Replace the --output file if it exists (an input is never replaced).'
complete -c ugosa -n '__ugosa_at labels convert' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at labels convert' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at labels convert' -s h -l help -d 'Show this message and exit.'
complete -c ugosa -n '__ugosa_at labels convert' -F

# ugosa labels from-stems
complete -c ugosa -n '__ugosa_at labels from-stems' -s f -l format -r -f -a 'audacity csv tsv frames json' -d 'Output format: audacity, csv, tsv, frames, json.'
complete -c ugosa -n '__ugosa_at labels from-stems' -l theta -r -f -d 'Activity threshold of the normalised envelope (paper: 0.01).'
complete -c ugosa -n '__ugosa_at labels from-stems' -l min-region -r -f -d 'Drop active regions shorter than this (seconds).'
complete -c ugosa -n '__ugosa_at labels from-stems' -l min-gap -r -f -d 'Fill silences shorter than this (seconds).'
complete -c ugosa -n '__ugosa_at labels from-stems' -s o -l output -r -F -d 'Write to this file (atomically) instead of stdout; an existing file is refused unless --force.'
complete -c ugosa -n '__ugosa_at labels from-stems' -l force -d 'Replace the --output file if it exists (an input is never replaced).'
complete -c ugosa -n '__ugosa_at labels from-stems' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at labels from-stems' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at labels from-stems' -s h -l help -d 'Show this message and exit.'
complete -c ugosa -n '__ugosa_at labels from-stems' -F

# ugosa labels draft
complete -c ugosa -n '__ugosa_at labels draft' -s o -l output -r -F -d 'Write the labels here (atomically) and print the path; \'-\' or none: the labels on stdout.'
complete -c ugosa -n '__ugosa_at labels draft' -s f -l format -r -f -a 'wav flac mp3' -d 'audacity, csv, tsv, frames or json (default: from -o\'s suffix, else audacity).'
complete -c ugosa -n '__ugosa_at labels draft' -l sources -r -f -a 'drums bass other vocals' -d 'Label only these sources (comma-separated or repeated); the others stay unconstrained.'
complete -c ugosa -n '__ugosa_at labels draft' -l stems-dir -r -f -a '(__fish_complete_directories)' -d 'Use the stems already in DIR (drums.wav, bass.wav, ..., as `ugosa separate` writes them) instead of separating the song.'
complete -c ugosa -n '__ugosa_at labels draft' -l threshold -r -f -d 'A stem plays where its level comes within DB of its own loud level (its 95th percentile).'
complete -c ugosa -n '__ugosa_at labels draft' -l min-share -r -f -d '...'
complete -c ugosa -n '__ugosa_at labels draft' -l min-region -r -f -d 'Drop active regions shorter than this.'
complete -c ugosa -n '__ugosa_at labels draft' -l min-gap -r -f -d 'Fill silences shorter than this.'
complete -c ugosa -n '__ugosa_at labels draft' -l presence -r -f -d 'Leave out (unconstrained) a source whose stem never holds more than DB of the song\'s power (its 95th percentile): the model finds too little of it to tell where it plays.'
complete -c ugosa -n '__ugosa_at labels draft' -s m -s n -l model -l name -r -F -a '(__ugosa_models)' -d 'Registry name (see `ugosa model list`), checkpoint or demucs v4 file, MSST weights (.ckpt, .pth, .safetensors; with --config), or http(s) URL (#sha256=HEX pins its hash); -n/--name as in demucs.'
complete -c ugosa -n '__ugosa_at labels draft' -l config -r -F -d 'The YAML configuration of the BS-RoFormer, Mel-Band RoFormer or SCNet model whose weights --model gives (as Music-Source-Separation-Training and UVR share them); a URL may end in #sha256=HEX.'
complete -c ugosa -n '__ugosa_at labels draft' -l model-type -r -F -d 'The type of the --config model, where the configuration does not tell it.'
complete -c ugosa -n '__ugosa_at labels draft' -s d -l device -r -f -a 'auto cpu cuda mps' -d 'One of auto, cpu, cuda, mps.'
complete -c ugosa -n '__ugosa_at labels draft' -l downmix -d 'Mix inputs with more than 2 channels down to stereo instead of failing.'
complete -c ugosa -n '__ugosa_at labels draft' -l force -d 'Replace the --output file if it exists (an input is never replaced).'
complete -c ugosa -n '__ugosa_at labels draft' -l json -d 'Print results as JSON on stdout.'
complete -c ugosa -n '__ugosa_at labels draft' -l offline -d 'Never use the network; use only cached or local models.'
complete -c ugosa -n '__ugosa_at labels draft' -s q -l quiet -d 'Print only results, warnings and errors.'
complete -c ugosa -n '__ugosa_at labels draft' -l debug -d 'Show full tracebacks on errors.'
complete -c ugosa -n '__ugosa_at labels draft' -s h -l help -d 'Show this message and exit.'
complete -c ugosa -n '__ugosa_at labels draft' -F
