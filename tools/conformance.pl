#!/usr/bin/perl
# tools/conformance.pl [DIR]: the conformance sweep of issue 23 (`make
# conformance DIR=...`).  Every file of DIR (at any depth) is converted
# twice: by the module (one nginx, the ASan build of the module with the
# core in the worker, POST /api/jobs?wait=1) and by the ffmpeg CLI, to
# the same format: mp4 for moving pictures, mp3 for sound alone, jpg for
# one picture (by what ffprobe sees; mp4 when it sees nothing).  One line
# a file, then a summary by class:
#
#   both          both converted, durations within 10 % or 0.5 s
#   both_differ   both converted, durations further apart
#   only_cli      the CLI converted, the module refused (a clean 4xx)
#   only_module   the module converted, the CLI failed
#   neither       neither converted; the module's answer is a clean 4xx
#                 JSON {"error":{"code","message"}}
#   DEFECT        a 5xx, an answer that is not clean 4xx JSON, no answer
#                 in time (hang), a worker that died (crash), or a
#                 sanitizer report in the error log
#
# Without DIR it runs on media it makes (tools/vconv_samples.sh --cases:
# one file per allowed format the CLI can write, and issue 23's cases).
# Environment: CONFORMANCE_OUT (where the table and each file's result
# go, default build/conformance), CONFORMANCE_TIMEOUT (s per file, 120),
# VCONV_ASAN_MODULE / VCONV_MODULE (the module to load; the ASan build
# by default), CONFORMANCE_ISOLATION (thread: the core runs in the ASan
# worker, where the sanitizer sees it; process: in the sandbox child).
# Exits 1 when a DEFECT was found.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use File::Find;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use VconvNginx;

my $root = "$FindBin::Bin/..";
my $build = $ENV{VCONV_BUILD} // "$root/build";
my $out = $ENV{CONFORMANCE_OUT} // "$build/conformance";
my $timeout = $ENV{CONFORMANCE_TIMEOUT} // 120;
my $isolation = $ENV{CONFORMANCE_ISOLATION} // 'thread';
my $dir = shift @ARGV;

make_path($out);
my $work = tempdir('vconv-conf-XXXXXX', TMPDIR => 1, CLEANUP => 1);

unless (defined $dir && length $dir) {
    $dir = "$out/generated";
    make_path($dir);
    system("$root/tools/vconv_samples.sh", $dir, '--cases') == 0
        or warn "conformance: some generated media could not be made\n";
}
die "conformance: $dir is not a folder\n" unless -d $dir;

my @files;
find({ no_chdir => 1, wanted => sub { push @files, $_ if -f $_ } }, $dir);
@files = sort @files;
die "conformance: no file in $dir\n" unless @files;

# ------------------------------------------------------------ the server
unless ($ENV{VCONV_MODULE}) {
    $ENV{VCONV_ASAN} = 1;
    $ENV{VCONV_ASAN_MODULE} //= "$build/asan/ngx_http_vconv_module.so";
    die "conformance: no ASan module at $ENV{VCONV_ASAN_MODULE}: "
        . "make build\n" unless -f $ENV{VCONV_ASAN_MODULE};
}
my $ng = VconvNginx->new(
    workers     => 1,
    crash_check => 0,
    http        => "    vconv_isolation $isolation;\n"
                 . "    vconv_stall_timeout 60s;\n",
)->start;
my @pids = @{ $ng->worker_pids };
my $log_seen = length $ng->error_log;

# ------------------------------------------------------------ helpers
sub run_timeout {
    my ($secs, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', "$work/cmd.err";
        setpgrp(0, 0);
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    my $end = time + $secs;
    while (time < $end) {
        return $? >> 8 if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    kill 'KILL', -$pid;
    waitpid($pid, 0);
    return 'timeout';
}

sub media_duration {
    my ($f) = @_;
    my $p = VconvNginx::probe($f) or return undef;
    return $p->{format}{duration};
}

# what the file holds, by ffprobe: the output format both are asked for
sub target {
    my ($f) = @_;
    my $p = VconvNginx::probe($f) or return 'mp4';
    my ($v, $a);
    for my $s (@{ $p->{streams} // [] }) {
        my $t = $s->{codec_type} // '';
        if ($t eq 'video' && !($s->{disposition}{attached_pic} // 0)) {
            $v = $s;
        }
        $a //= $s if $t eq 'audio';
    }
    return 'mp3' if $a && !$v;
    return 'mp4' unless $v;
    my $fmt = $p->{format}{format_name} // '';
    my $nb = $v->{nb_frames} // '';
    return 'jpg' if $fmt =~ /_pipe$|^image2$/ || ($nb ne '' && $nb eq '1');
    return 'mp4';
}

sub clean_error {
    my ($r) = @_;
    my $e = ref $r->{json} eq 'HASH' ? $r->{json}{error} : undef;
    return ref $e eq 'HASH' && defined $e->{code} && $e->{code} ne ''
           && defined $e->{message} && $e->{message} ne '';
}

sub agree {
    my ($a, $b) = @_;
    return 1 unless defined $a && defined $b;
    my $d = abs($a - $b);
    return $d <= 0.5 || $d <= 0.1 * ($a > $b ? $a : $b);
}

# ------------------------------------------------------------ the sweep
my %count;
my @rows;
my $n = 0;
open my $tsv, '>', "$out/results.tsv" or die "$out/results.tsv: $!";
print $tsv "class\tmodule\tcli\tdur_module\tdur_cli\tfile\n";

for my $f (@files) {
    $n++;
    my $rel = substr($f, length($dir) + 1);
    my $to = target($f);
    my $mo = "$work/m.$to";
    my $co = "$work/c.$to";
    unlink $mo, $co;

    # the module
    my $t0 = time;
    my $r = $ng->post_file("/api/jobs?format=$to&wait=1", $f,
                           name => (split m{/}, $f)[-1],
                           max_time => $timeout, output => $mo,
                           no_crash_check => 1);
    my ($mres, $mok, @defect);
    if (!$r->{status}) {
        $mres = 'no answer (curl ' . ($r->{curl_exit} // '?') . ')';
        push @defect, 'hang';
    } elsif ($r->{status} == 200 && -s $mo) {
        $mres = '200';
        $mok = 1;
    } else {
        my $body = do { local (@ARGV, $/) = ($mo); <> } // '';
        $r->{json} = eval { JSON::PP->new->decode($body) };
        my $code = clean_error($r) ? $r->{json}{error}{code} : '';
        $mres = "$r->{status} $code";
        push @defect, '5xx' if $r->{status} >= 500;
        push @defect, 'not clean 4xx JSON'
            if $r->{status} < 500 && ($r->{status} < 400 || !clean_error($r));
    }

    my @now = @{ $ng->worker_pids };
    if ("@now" ne "@pids") {
        push @defect, 'crash';
        @pids = @now;
    }
    my $log = $ng->error_log;
    my $new = substr($log, $log_seen);
    $log_seen = length $log;
    if ($new =~ /AddressSanitizer|LeakSanitizer|runtime error:|exited on signal/) {
        push @defect, 'sanitizer/crash report';
        open my $keep, '>', "$out/log-$n.txt";
        print $keep $new if $keep;
    }

    # the ffmpeg CLI, as a user would run it
    my @cli = ('ffmpeg', '-nostdin', '-hide_banner', '-loglevel', 'error',
               '-y', '-i', $f, '-sn', '-dn');
    push @cli, '-vn' if $to eq 'mp3';
    push @cli, '-frames:v', '1', '-update', '1' if $to eq 'jpg';
    my $ce = run_timeout($timeout, @cli, $co);
    my $cok = $ce eq '0' && -s $co && defined(VconvNginx::probe($co));
    my $cres = $cok ? 'ok' : ($ce eq 'timeout' ? 'timeout' : "exit $ce");

    my ($dm, $dc);
    $dm = media_duration($mo) if $mok;
    $dc = media_duration($co) if $cok;

    my $class;
    if (@defect) {
        $class = 'DEFECT';
    } elsif ($mok && $cok) {
        $class = $to eq 'jpg' || agree($dm, $dc) ? 'both' : 'both_differ';
    } elsif ($cok) {
        $class = 'only_cli';
    } elsif ($mok) {
        $class = 'only_module';
    } else {
        $class = 'neither';
    }
    $count{$class}++;

    my $line = sprintf "%-11s %-4s module %-32s cli %-10s %7s %7s  %s%s",
        $class, $to, $mres, $cres,
        defined $dm ? sprintf('%.2f', $dm) : '-',
        defined $dc ? sprintf('%.2f', $dc) : '-', $rel,
        @defect ? ' [' . join(', ', @defect) . ']' : '';
    print "$line\n";
    print $tsv join("\t", $class, $mres, $cres, $dm // '', $dc // '', $rel),
               "\n";
}
close $tsv;

$ng->stop;

# ------------------------------------------------------------ summary
my @order = qw(both both_differ only_cli only_module neither DEFECT);
my $sum = "\nconformance: $n files in $dir\n";
$sum .= sprintf "  %-12s %5d\n", $_, $count{$_} // 0 for @order;
print $sum;
open my $s, '>', "$out/summary.txt";
print $s $sum if $s;

exit(($count{DEFECT} // 0) ? 1 : 0);
