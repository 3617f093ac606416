#!/usr/bin/perl
# Damaged and absurd audio found by fuzzing (issue 24, issue 23): each is
# answered with a file or a 4xx JSON error, and no worker dies.
#
# - lame-abort.asf and lame-abort.aac decode to float samples far outside
#   +-1.0; libmp3lame asserted on them and aborted the worker.  Three
#   uploads each to mp3 at 32k: the same worker pids before and after.
# - wav-rate-bomb.wav says 855 MHz: refused at the probe (422
#   unsupported_sample_rate) before the resampler asks for 1.7 GB.
# - a 100-channel WAV: 422 unsupported_audio_layout, not a 500; a
#   63-channel one (no standard layout) converts.
# - audio frames without timestamps (lame-abort.asf) get them from their
#   samples: the output has a length, and max_duration counts them.
#
# The samples are kept in fuzz/regressions/media/.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;
use VconvMedia ();
use VconvHostile qw(:all);

my $dir = tempdir('vconv-hs-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $J = VconvNginx->json;
my $media = "$FindBin::Bin/../fuzz/regressions/media";

for my $f (qw(lame-abort.asf lame-abort.aac wav-rate-bomb.wav)) {
    BAIL_OUT("missing $media/$f") unless -f "$media/$f";
}

sub code_of {
    my ($r) = @_;
    return $r->{json} && ref $r->{json}{error} eq 'HASH'
         ? $r->{json}{error}{code} // '' : '';
}

# a job's end: the upload's own answer, or the job's once it is final
sub outcome {
    my ($ng, $file, $query) = @_;
    my $r = $ng->post_file("/api/jobs?$query", $file,
                           name => (split m{/}, $file)[-1]);
    return { http => $r->{status}, code => code_of($r) }
        unless $r->{status} == 202 && $r->{json} && $r->{json}{id};
    my $job = $ng->wait_job($r->{json}{id}, 60) // {};
    return { http => 202, status => $job->{status} // '',
             code => ($job->{error} // {})->{code} // '', job => $job };
}

my $ch100 = "$dir/ch100.wav";
ff('-f', 's16le', '-ar', '8000', '-ac', '100', '-i', '/dev/urandom',
   '-t', '1', $ch100);
my $ch63 = "$dir/ch63.wav";
ff('-f', 's16le', '-ar', '8000', '-ac', '63', '-i', '/dev/urandom',
   '-t', '1', $ch63);

my $ng = VconvNginx->new(workers => 2)->start;
my @pids = sort { $a <=> $b } @{ $ng->worker_pids };
is(scalar @pids, 2, "two workers: @pids");

# ------------------------------------------------ float samples past 1.0
for my $name (qw(lame-abort.asf lame-abort.aac)) {
    for my $i (1 .. 3) {
        my $r = $ng->post_file('/api/jobs?format=mp3&audio_bitrate=32k'
                               . '&wait=1', "$media/$name", name => $name);
        if ($r->{status} == 200) {
            my $out = "$dir/$name-$i.mp3";
            spew($out, $r->{body});
            my $p = VconvMedia::probe($out);
            my $a = VconvMedia::audio_stream($p) // {};
            ok(($a->{codec_name} // '') eq 'mp3'
               && ($p->{format}{duration} // 0) > 0,
               "$name -> mp3, run $i: a valid mp3 ("
               . ($p->{format}{duration} // '?') . ' s)');
        } else {
            ok($r->{status} =~ /^4\d\d$/ && code_of($r) ne '',
               "$name -> mp3, run $i: a JSON error ($r->{status} "
               . code_of($r) . ')')
                or diag(substr($r->{body}, 0, 300));
        }
    }
}

my @after = sort { $a <=> $b } @{ $ng->worker_pids };
is("@after", "@pids", 'the same workers after the six uploads');
unlike($ng->error_log, qr/exited on signal/, 'no worker died');

# ------------------------------------------------ absurd audio parameters
my $hwm0 = vm_hwm($pids[0]) + vm_hwm($pids[1]);
my $o = outcome($ng, "$media/wav-rate-bomb.wav", 'format=mp3');
ok(($o->{http} == 422 || ($o->{status} // '') eq 'failed')
   && $o->{code} eq 'unsupported_sample_rate',
   "wav-rate-bomb.wav (855 MHz) -> unsupported_sample_rate "
   . "[$o->{http} $o->{code}]");
like(($o->{job} // {})->{error}{message} // 'refused at upload',
     qr/855646016 Hz|refused at upload/, '... the message names the rate');
my $hwm1 = vm_hwm($pids[0]) + vm_hwm($pids[1]);
cmp_ok($hwm1 - $hwm0, '<', 100 * 1024,
       "worker peak RSS grew < 100 MB over it ($hwm0 -> $hwm1 kB)");

$o = outcome($ng, $ch100, 'format=mp3');
ok(($o->{http} == 422 || ($o->{status} // '') eq 'failed')
   && $o->{code} eq 'unsupported_audio_layout',
   "100-channel WAV -> unsupported_audio_layout, not a 500 "
   . "[$o->{http} $o->{code}]");
like(($o->{job} // {})->{error}{message} // 'refused at upload',
     qr/100 audio channels|refused at upload/,
     '... the message names the count');

$o = outcome($ng, $ch63, 'format=mp3');
is($o->{status} // $o->{http}, 'done', '63-channel WAV -> mp3 converts')
    or diag($J->encode($o));
if (($o->{status} // '') eq 'done') {
    $ng->download($o->{job}{id}, "$dir/ch63.mp3");
    my $a = VconvMedia::audio_stream(VconvMedia::probe("$dir/ch63.mp3"))
            // {};
    is($a->{channels}, 2, '... mixed down to stereo');
}

@after = sort { $a <=> $b } @{ $ng->worker_pids };
is("@after", "@pids", 'the same workers at the end');

$ng->stop;

# ------------------------------------------------ frames without a time
# lame-abort.asf's audio frames carry no timestamps: they follow on by
# their samples, so the output has a length and max_duration holds
my ($rc, $j) = VconvMedia::cli("$media/lame-abort.asf", "$dir/nopts.mp3",
                               'format=mp3');
cmp_ok(($j // {})->{duration} // 0, '>', 0.7,
       'frames without a time: the output lasts what they hold '
       . '(' . (($j // {})->{duration} // '?') . ' s)');
($rc, $j) = VconvMedia::cli('--max-duration', '0.5', "$media/lame-abort.asf",
                            "$dir/nopts2.mp3", 'format=mp3');
is(($j // {})->{error}{code}, 'duration_limit',
   '... and count against max_duration');

done_testing();
